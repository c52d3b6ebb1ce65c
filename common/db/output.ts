import { CHANNELS, type Pool } from './pool.js';

export interface Chunk {
  seq: number;
  data: Buffer;
}

/**
 * Stores chunks (idempotent on (task_id, seq): a replay after a worker restart doubles nothing)
 * and wakes every listener in the same transaction, so a NOTIFY never announces unwritten rows.
 */
export async function appendChunks(pool: Pool, taskId: string, chunks: Chunk[]): Promise<void> {
  if (!chunks.length) return;
  const last = chunks[chunks.length - 1]!.seq;
  await pool.query(
    `WITH ins AS (
       INSERT INTO output_chunks (task_id, seq, data)
       SELECT $1, s, d FROM unnest($2::bigint[], $3::bytea[]) AS u(s, d)
       ON CONFLICT DO NOTHING RETURNING 1)
     SELECT pg_notify($4, $1 || ':' || $5::text) FROM (SELECT count(*) FROM ins) c`,
    [taskId, chunks.map((c) => c.seq), chunks.map((c) => c.data), CHANNELS.output, last],
  );
}

export async function readChunks(
  pool: Pool,
  taskId: string,
  afterSeq: number,
  limit = 256,
): Promise<Chunk[]> {
  const { rows } = await pool.query<Chunk>(
    'SELECT seq, data FROM output_chunks WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    [taskId, afterSeq, limit],
  );
  return rows;
}

/** Highest stored seq, or 0. */
export async function lastSeq(pool: Pool, taskId: string): Promise<number> {
  const { rows } = await pool.query<{ s: number | null }>(
    'SELECT max(seq) AS s FROM output_chunks WHERE task_id = $1',
    [taskId],
  );
  return rows[0]?.s ?? 0;
}

/** Lowest seq still kept (older ones fell to the retention cap), or undefined when none. */
export async function firstSeq(pool: Pool, taskId: string): Promise<number | undefined> {
  const { rows } = await pool.query<{ s: number | null }>(
    'SELECT min(seq) AS s FROM output_chunks WHERE task_id = $1',
    [taskId],
  );
  return rows[0]?.s ?? undefined;
}

/** Drops the oldest chunks until the task keeps at most `maxBytes` of output. */
export async function enforceRetention(pool: Pool, taskId: string, maxBytes: number): Promise<number> {
  const { rowCount } = await pool.query(
    `DELETE FROM output_chunks WHERE task_id = $1 AND seq <= (
       SELECT max(seq) FROM (
         SELECT seq, sum(length(data)) OVER (ORDER BY seq DESC) AS newer_bytes
         FROM output_chunks WHERE task_id = $1) s
       WHERE newer_bytes > $2)`,
    [taskId, maxBytes],
  );
  return rowCount ?? 0;
}

/** The last chunks of a task's output, oldest first, about `maxBytes` at most. */
export async function readTail(
  pool: Pool,
  taskId: string,
  maxBytes: number,
): Promise<{ seq: number; data: Buffer }> {
  const { rows } = await pool.query<Chunk>(
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
  return { seq: rows[0] ? Number(rows[0].seq) : 0, data: all.subarray(Math.max(0, all.length - maxBytes)) };
}
