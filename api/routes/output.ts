/**
 * GET /api/v1/tasks/{id}/output — the stored log from a seq, a page at a time (at most 1 MiB as
 * JSON text, 8 MiB raw, or `maxBytes`; at least one chunk), with `nextSeq` for the next page and
 * `more` when there is one. The raw form is streamed a few chunks at a time, never held whole.
 */
import { type Context, Hono } from 'hono';
import type { OutputLog } from '../../output/log.js';
import type { TaskService } from '../../tasks/service.js';
import type { AuthEnv } from '../auth.js';
import { describeZodError, invalid } from '../errors.js';
import type { OutputResponse } from '../types.js';
import { OUTPUT_PAGE_MAX_BYTES, outputQuery } from '../validation.js';

export function outputRoutes(tasks: TaskService, output: OutputLog): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get('/:id/output', async (c) => {
    const id = c.get('taskId');
    const q = outputQuery.safeParse(c.req.query());
    if (!q.success) throw invalid(describeZodError(q.error));
    await tasks.authorized(c.get('caller'), id);
    const maxBytes = Math.min(
      q.data.maxBytes ?? OUTPUT_PAGE_MAX_BYTES[q.data.format],
      OUTPUT_PAGE_MAX_BYTES[q.data.format],
    );
    if (q.data.format === 'raw') return rawPage(c, output, id, q.data.from, maxBytes);
    const page = await output.page(id, q.data.from, maxBytes);
    const body: OutputResponse = {
      taskId: id,
      fromSeq: page.fromSeq,
      nextSeq: page.nextSeq,
      firstAvailableSeq: page.firstAvailableSeq,
      // The oldest output is dropped past LIA__OUTPUT__RETENTION_BYTES per task: `truncated` says so.
      truncated: page.truncated,
      more: page.more,
      text: Buffer.concat(page.chunks.map((ch) => ch.data)).toString('utf8'),
    };
    return c.json(body);
  });
  return app;
}

/** The raw page, streamed a few chunks at a time; its headers say where it starts and ends. */
async function rawPage(c: Context<AuthEnv>, output: OutputLog, id: string, from: number, maxBytes: number) {
  const page = await output.pageBounds(id, from, maxBytes);
  let cursor = page.fromSeq - 1;
  const stream = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const chunks = (await output.read(id, cursor, 16)).filter((ch) => ch.seq < page.nextSeq);
      if (!chunks.length) return ctl.close();
      for (const ch of chunks) ctl.enqueue(new Uint8Array(ch.data));
      cursor = chunks[chunks.length - 1]!.seq;
    },
  });
  return c.body(stream, 200, {
    'content-type': 'application/octet-stream',
    'x-lia-from-seq': String(page.fromSeq),
    'x-lia-next-seq': String(page.nextSeq),
    'x-lia-first-available-seq': String(page.firstAvailableSeq),
    'x-lia-truncated': String(page.truncated),
    'x-lia-more': String(page.more),
  });
}
