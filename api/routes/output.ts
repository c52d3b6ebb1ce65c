/** GET /api/v1/tasks/{id}/output — the stored log from a seq, as JSON text or raw bytes. */
import { Hono } from 'hono';
import type { OutputLog } from '../../output/log.js';
import type { TaskService } from '../../tasks/service.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, invalid } from '../errors.js';
import type { OutputResponse } from '../types.js';
import { outputQuery } from '../validation.js';

export function outputRoutes(tasks: TaskService, output: OutputLog): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get('/:id/output', async (c) => {
    const id = c.get('taskId');
    const q = outputQuery.safeParse(c.req.query());
    if (!q.success) throw invalid(describeZodError(q.error));
    await tasks.authorized(c.get('caller'), id);
    const page = await output.page(id, q.data.from);
    const data = Buffer.concat(page.chunks.map((ch) => ch.data));
    // The oldest output is dropped past LIA__OUTPUT__RETENTION_BYTES per task: `truncated` says so.
    const meta = {
      fromSeq: page.fromSeq,
      nextSeq: page.nextSeq,
      firstAvailableSeq: page.firstAvailableSeq,
      truncated: page.truncated,
    };
    if (q.data.format === 'raw') {
      return c.body(new Uint8Array(data), 200, {
        'content-type': 'application/octet-stream',
        'x-lia-from-seq': String(meta.fromSeq),
        'x-lia-next-seq': String(meta.nextSeq),
        'x-lia-first-available-seq': String(meta.firstAvailableSeq),
        'x-lia-truncated': String(meta.truncated),
      });
    }
    const body: OutputResponse = { taskId: id, ...meta, text: data.toString('utf8') };
    return c.json(body);
  });
  return app;
}
