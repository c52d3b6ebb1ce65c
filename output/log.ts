/**
 * The output log: a task's terminal output as numbered chunks in PostgreSQL (`task_id, seq,
 * bytes`). The host's pump appends; every reader (the WebSocket stream, GET /output, the bot's
 * thread) reads from here, from a seq, so a client that says the last seq it saw gets exactly
 * what it missed. The oldest chunks are dropped past a per-task byte cap (retention).
 */
import { CHANNELS, outputPayloadSql } from '../common/db/channels.js';
import type { Pool } from '../common/db/pool.js';

export interface Chunk {
  seq: number;
  data: Buffer;
}

/** A stretch of the log read from a seq. */
export interface OutputPage {
  chunks: Chunk[];
  /** The first seq asked for that is still kept (`from`, or later when older ones were dropped). */
  fromSeq: number;
  /** The seq to ask for next. */
  nextSeq: number;
  /** The lowest seq still kept. */
  firstAvailableSeq: number;
  /** True when output the caller asked for was dropped by the retention cap. */
  truncated: boolean;
  /** True when the log goes on past this page. */
  more: boolean;
}

export class OutputLog {
  constructor(private readonly pool: Pool) {}

  /**
   * Stores chunks (idempotent on (task_id, seq): a replay after a worker restart doubles
   * nothing) and wakes every listener in the same statement, so a NOTIFY never announces rows
   * that are not there.
   */
  async append(taskId: string, chunks: Chunk[]): Promise<void> {
    if (!chunks.length) return;
    const last = chunks[chunks.length - 1]!.seq;
    await this.pool.query(
      `WITH ins AS (
         INSERT INTO output_chunks (task_id, seq, data)
         SELECT $1, s, d FROM unnest($2::bigint[], $3::bytea[]) AS u(s, d)
         ON CONFLICT DO NOTHING RETURNING 1)
       SELECT pg_notify($4, ${outputPayloadSql('$1', '$5')}) FROM (SELECT count(*) FROM ins) c`,
      [taskId, chunks.map((c) => c.seq), chunks.map((c) => c.data), CHANNELS.output, last],
    );
  }

  /** Chunks after `afterSeq`, oldest first, at most `limit` of them. */
  async read(taskId: string, afterSeq: number, limit = 256): Promise<Chunk[]> {
    const { rows } = await this.pool.query<Chunk>(
      'SELECT seq, data FROM output_chunks WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [taskId, afterSeq, limit],
    );
    return rows;
  }

  /**
   * Where a page of the log from `from`, at most `maxBytes` (but at least one chunk), starts
   * and ends, without reading its bytes.
   */
  async pageBounds(taskId: string, from: number, maxBytes: number): Promise<Omit<OutputPage, 'chunks'>> {
    const first = (await this.firstSeq(taskId)) ?? (await this.lastSeq(taskId)) + 1;
    const fromSeq = Math.max(from, first);
    const { rows } = await this.pool.query<{ last: number | null; more: boolean | null }>(
      `WITH c AS (
         SELECT seq, sum(length(data)) OVER (ORDER BY seq) AS upto
         FROM output_chunks WHERE task_id = $1 AND seq >= $2)
       SELECT coalesce(max(seq) FILTER (WHERE upto <= $3), min(seq)) AS last,
              bool_or(upto > $3) AS more
       FROM c`,
      [taskId, fromSeq, maxBytes],
    );
    const last = rows[0]?.last ?? fromSeq - 1;
    // At least one chunk: `more` is then whether anything follows it.
    const more = rows[0]?.more === true && (await this.read(taskId, last, 1)).length > 0;
    return { fromSeq, nextSeq: last + 1, firstAvailableSeq: first, truncated: from < first, more };
  }

  /** The log from `from` on, up to `maxBytes` (at least one chunk when there is one). */
  async page(taskId: string, from: number, maxBytes = Number.POSITIVE_INFINITY): Promise<OutputPage> {
    const bounds = await this.pageBounds(
      taskId,
      from,
      Number.isFinite(maxBytes) ? maxBytes : Number.MAX_SAFE_INTEGER,
    );
    const chunks: Chunk[] = [];
    for (let cursor = bounds.fromSeq - 1; cursor < bounds.nextSeq - 1; ) {
      const batch = (await this.read(taskId, cursor, 256)).filter((c) => c.seq < bounds.nextSeq);
      if (!batch.length) break;
      chunks.push(...batch);
      cursor = batch[batch.length - 1]!.seq;
    }
    return { chunks, ...bounds };
  }

  /** Highest stored seq, or 0. */
  async lastSeq(taskId: string): Promise<number> {
    const { rows } = await this.pool.query<{ s: number | null }>(
      'SELECT max(seq) AS s FROM output_chunks WHERE task_id = $1',
      [taskId],
    );
    return rows[0]?.s ?? 0;
  }

  /** Lowest seq still kept (older ones fell to the retention cap), or undefined when none. */
  async firstSeq(taskId: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ s: number | null }>(
      'SELECT min(seq) AS s FROM output_chunks WHERE task_id = $1',
      [taskId],
    );
    return rows[0]?.s ?? undefined;
  }

  /** Drops the oldest chunks until the task keeps at most `maxBytes` of output. */
  async enforceRetention(taskId: string, maxBytes: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM output_chunks WHERE task_id = $1 AND seq <= (
         SELECT max(seq) FROM (
           SELECT seq, sum(length(data)) OVER (ORDER BY seq DESC) AS newer_bytes
           FROM output_chunks WHERE task_id = $1) s
         WHERE newer_bytes > $2)`,
      [taskId, maxBytes],
    );
    return rowCount ?? 0;
  }

  /** Deletes the output of tasks that ended more than `afterSeconds` ago (a batch of them); returns how many tasks. */
  async dropEnded(afterSeconds: number, batch = 100): Promise<number> {
    const { rowCount } = await this.pool.query(
      `WITH gone AS (
         SELECT t.id FROM tasks t
         WHERE t.status IN ('terminated', 'failed') AND t.updated_at < now() - make_interval(secs => $1)
           AND EXISTS (SELECT 1 FROM output_chunks o WHERE o.task_id = t.id)
         LIMIT $2)
       DELETE FROM output_chunks WHERE task_id IN (SELECT id FROM gone)`,
      [afterSeconds, batch],
    );
    return rowCount ?? 0;
  }

  /** The last bytes of a task's output (about `maxBytes`), and the seq they end at. */
  async tail(taskId: string, maxBytes: number): Promise<{ seq: number; data: Buffer }> {
    const { rows } = await this.pool.query<Chunk>(
      'SELECT seq, data FROM output_chunks WHERE task_id = $1 ORDER BY seq DESC LIMIT 64',
      [taskId],
    );
    const parts: Buffer[] = [];
    let size = 0;
    for (const r of rows) {
      if (size >= maxBytes) break;
      parts.unshift(r.data);
      size += r.data.length;
    }
    const all = Buffer.concat(parts);
    return { seq: rows[0]?.seq ?? 0, data: all.subarray(Math.max(0, all.length - maxBytes)) };
  }
}
