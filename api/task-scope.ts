/**
 * Every per-task route's door: the id in the path is parsed once, and a link token is held to
 * the one task it was made for. Routes read the checked id from `c.get('taskId')`.
 */
import type { MiddlewareHandler } from 'hono';
import { taskIdSchema } from '../common/task.js';
import { type AuthEnv, checkLinkScope } from './auth.js';
import { describeZodError, invalid } from './errors.js';

function parseTaskId(raw: string): string {
  const r = taskIdSchema.safeParse(raw);
  if (!r.success)
    throw invalid(`malformed task id ${JSON.stringify(raw.slice(0, 40))}: ${describeZodError(r.error)}`);
  return r.data;
}

export function taskScope(): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const id = parseTaskId(c.req.param('id') ?? '');
    checkLinkScope(c.get('caller'), id);
    c.set('taskId', id);
    await next();
  };
}
