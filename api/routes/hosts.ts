/** Admin routes under /api/v1/hosts: list hosts, drain one (no new placements), activate it again. */
import { Hono } from 'hono';
import { z } from 'zod';
import type { HostService } from '../../tasks/hosts.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, HttpError, invalid } from '../errors.js';

const hostId = z.string().regex(/^[a-z0-9-]{1,40}$/, 'a host id is lower-case letters, digits and dashes');

export function hostRoutes(hosts: HostService): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.use('*', async (c, next) => {
    if (c.get('caller').via === 'link') throw new HttpError(403, 'forbidden', 'a task link cannot see hosts');
    await next();
  });
  app.get('/', async (c) => c.json({ hosts: await hosts.list(c.get('caller')) }));
  for (const [action, state] of [
    ['drain', 'draining'],
    ['activate', 'active'],
  ] as const) {
    app.post(`/:id/${action}`, async (c) => {
      const id = hostId.safeParse(c.req.param('id'));
      if (!id.success) throw invalid(describeZodError(id.error));
      await hosts.setState(c.get('caller'), id.data, state);
      return c.json({ hostId: id.data, state });
    });
  }
  return app;
}
