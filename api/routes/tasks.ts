/** The REST routes under /api/v1/tasks. Every input is checked here; workflows see only valid input. */
import { Hono } from 'hono';
import { z } from 'zod';
import { firstSeq, lastSeq, readChunks } from '../../common/db/output.js';
import type { Pool } from '../../common/db/pool.js';
import { fileNameSchema, LIMITS, promptSchema, RUNTIMES, taskIdSchema } from '../../common/task.js';
import type { TaskClient } from '../../common/task-client.js';
import { type AuthEnv, checkLinkScope } from '../auth.js';
import { describeZodError, HttpError, invalid } from '../errors.js';

export const createTaskSchema = z
  .object({
    prompt: promptSchema,
    runtime: z.enum(RUNTIMES).default('claude'),
    idleTimeoutSeconds: z
      .number()
      .int('idleTimeoutSeconds must be a whole number of seconds')
      .min(LIMITS.idleTimeoutSeconds.min)
      .max(LIMITS.idleTimeoutSeconds.max)
      .optional(),
    files: z
      .array(
        z
          .object({
            name: fileNameSchema,
            content: z.base64('content must be the file encoded as base64'),
          })
          .strict(),
      )
      .max(LIMITS.filesMax, `at most ${LIMITS.filesMax} files per task`)
      .default([]),
  })
  .strict();

const outputQuery = z.object({
  from: z.coerce.number().int().min(1, 'from is a seq, 1 or more').default(1),
  format: z.enum(['json', 'raw']).default('json'),
});

export function parseTaskId(raw: string): string {
  const r = taskIdSchema.safeParse(raw);
  if (!r.success)
    throw invalid(`malformed task id ${JSON.stringify(raw.slice(0, 40))}: ${describeZodError(r.error)}`);
  return r.data;
}

export async function readJson(req: { text(): Promise<string> }): Promise<unknown> {
  const text = await req.text();
  if (!text.trim()) throw invalid('the request needs a JSON body');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`the body is not valid JSON: ${(err as Error).message}`);
  }
}

export function taskRoutes(tasks: TaskClient, pool: Pool): Hono<AuthEnv> {
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
      idleTimeoutSeconds: b.idleTimeoutSeconds,
      files: b.files.map((f) => ({ name: f.name, data: Buffer.from(f.content, 'base64') })),
    });
    return c.json(created, 201);
  });

  app.get('/', async (c) => {
    const caller = c.get('caller');
    const list = await tasks.list(caller, c.req.query('all') === 'true');
    const withLinks = await Promise.all(
      list.map(async (t) => ({ ...t, url: await tasks.link(t.owner, t.id) })),
    );
    return c.json({ tasks: withLinks });
  });

  app.get('/:id', async (c) => {
    const caller = c.get('caller');
    const id = parseTaskId(c.req.param('id'));
    checkLinkScope(caller, id);
    const view = await tasks.get(caller, id);
    return c.json({ ...view, url: await tasks.link(view.owner, id) });
  });

  app.post('/:id/resume', async (c) => {
    const caller = c.get('caller');
    const id = parseTaskId(c.req.param('id'));
    checkLinkScope(caller, id);
    const state = await tasks.resume(caller, id, 'completed');
    return c.json(state ?? { taskId: id, status: 'running' });
  });

  app.delete('/:id', async (c) => {
    const caller = c.get('caller');
    const id = parseTaskId(c.req.param('id'));
    checkLinkScope(caller, id);
    await tasks.stop(caller, id);
    return c.json(
      { taskId: id, accepted: true, message: 'terminating: the VM is cleaned up, then the task ends' },
      202,
    );
  });

  app.get('/:id/output', async (c) => {
    const caller = c.get('caller');
    const id = parseTaskId(c.req.param('id'));
    checkLinkScope(caller, id);
    const q = outputQuery.safeParse(c.req.query());
    if (!q.success) throw invalid(describeZodError(q.error));
    await tasks.authorized(caller, id);
    const first = (await firstSeq(pool, id)) ?? (await lastSeq(pool, id)) + 1;
    const from = Math.max(q.data.from, first);
    const parts: Buffer[] = [];
    let cursor = from - 1;
    for (;;) {
      const batch = await readChunks(pool, id, cursor, 1024);
      if (!batch.length) break;
      for (const ch of batch) parts.push(ch.data);
      cursor = batch[batch.length - 1]!.seq;
    }
    const data = Buffer.concat(parts);
    const meta = {
      fromSeq: from,
      nextSeq: cursor + 1,
      firstAvailableSeq: first,
      // The oldest output is dropped past LIA__OUTPUT__RETENTION_BYTES per task.
      truncated: q.data.from < first,
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
    return c.json({ taskId: id, ...meta, text: data.toString('utf8') });
  });

  return app;
}
