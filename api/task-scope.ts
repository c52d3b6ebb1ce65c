/**
 * Every per-task route's door: the id in the path is parsed once, and a link token is held to
 * the one task it was made for. Routes read the checked id from `c.get('taskId')`.
 */
import type { MiddlewareHandler } from 'hono';
import { taskIdSchema } from '../common/task.js';
import type { TaskService } from '../tasks/service.js';
import { type AuthEnv, checkLinkScope } from './auth.js';
import { describeZodError, HttpError, invalid } from './errors.js';

function parseTaskId(raw: string): string {
  const r = taskIdSchema.safeParse(raw);
  if (!r.success)
    throw invalid(`malformed task id ${JSON.stringify(raw.slice(0, 40))}: ${describeZodError(r.error)}`);
  return r.data;
}

export function taskScope(tasks: Pick<TaskService, 'linkCurrent'>): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const id = parseTaskId(c.req.param('id') ?? '');
    const caller = c.get('caller');
    checkLinkScope(caller, id);
    if (caller.via === 'link' && !(await tasks.linkCurrent(id, caller.linkIssuedAt ?? 0)))
      throw new HttpError(401, 'unauthenticated', REVOKED);
    c.set('taskId', id);
    await next();
  };
}

export const REVOKED =
  'this link was replaced by a newer one, or its task was stopped; ask for a new link (/status in Discord, ./lia status --link)';
