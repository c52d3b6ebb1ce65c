/** The REST routes under /api/v1/tasks. Every input is checked here; workflows see only valid input. */
import { Hono } from 'hono';
import { LIMITS } from '../../common/task.js';
import type { TaskService } from '../../tasks/service.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, HttpError, invalid } from '../errors.js';
import type { TaskListResponse } from '../types.js';
import { createTaskSchema, readJson } from '../validation.js';

export function taskRoutes(tasks: TaskService): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.post('/', async (c) => {
    const caller = c.get('caller');
    if (caller.via === 'link')
      throw new HttpError(403, 'forbidden', 'a task link cannot create tasks; use /spawn in Discord');
    const parsed = createTaskSchema.safeParse(await readJson(c.req));
    if (!parsed.success) throw invalid(describeZodError(parsed.error));
    const b = parsed.data;
    for (const f of b.files) {
      if (Buffer.byteLength(f.content, 'base64') > LIMITS.fileMaxBytes) {
        throw invalid(`file ${f.name} is larger than ${LIMITS.fileMaxBytes / 1024 / 1024} MiB`);
      }
    }
    const created = await tasks.create(caller, {
      prompt: b.prompt,
      runtime: b.runtime,
      permissionMode: b.permissionMode,
      idleTimeoutSeconds: b.idleTimeoutSeconds,
      ...(b.repo || b.branch ? { repo: b.repo, branch: b.branch } : {}),
      ...(b.autoPullRequest !== undefined ? { autoPullRequest: b.autoPullRequest } : {}),
      files: b.files.map((f) => ({ name: f.name, data: Buffer.from(f.content, 'base64') })),
    });
    return c.json(created, 201);
  });

  // Lists carry no links (a link is made only when someone asks for one, and revokes the last):
  // a task link lists its own task only.
  app.get('/', async (c) => {
    const caller = c.get('caller');
    const list =
      caller.via === 'link'
        ? [await tasks.authorized(caller, caller.linkTaskId!)]
        : await tasks.list(caller, c.req.query('all') === 'true');
    const body: TaskListResponse = { tasks: list };
    return c.json(body);
  });

  // `?link=true` (services only): a new link to the task's page, which revokes its older ones.
  app.get('/:id', async (c) => {
    const caller = c.get('caller');
    const view = await tasks.get(caller, c.get('taskId'));
    if (c.req.query('link') !== 'true') return c.json(view);
    if (caller.via === 'link') throw new HttpError(403, 'forbidden', 'a task link cannot make new links');
    return c.json({ ...view, url: await tasks.link(view.owner, view.id) });
  });

  app.post('/:id/resume', async (c) => {
    const id = c.get('taskId');
    const state = await tasks.resume(c.get('caller'), id, 'completed');
    return c.json(state ?? { taskId: id, status: 'running' });
  });

  // Issue 20: push the task's branch and open (or update) its pull request; resumes a suspended task.
  app.post('/:id/pull-request', async (c) => {
    // A task link may: it acts on its one task, for its owner (the page's button).
    return c.json(await tasks.openPullRequest(c.get('caller'), c.get('taskId')));
  });

  // Issue 20: the working tree against the base, from the guest (`?fresh=false`: the last one taken).
  app.get('/:id/diff', async (c) => {
    const fresh = c.req.query('fresh');
    if (fresh !== undefined && fresh !== 'true' && fresh !== 'false')
      throw invalid('fresh must be true or false');
    return c.json(await tasks.diff(c.get('caller'), c.get('taskId'), { fresh: fresh !== 'false' }));
  });

  app.delete('/:id', async (c) => {
    const id = c.get('taskId');
    await tasks.stop(c.get('caller'), id);
    return c.json(
      { taskId: id, accepted: true, message: 'terminating: the VM is cleaned up, then the task ends' },
      202,
    );
  });

  return app;
}
