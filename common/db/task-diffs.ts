/**
 * A task's last diff (issue 20) and the API's asks for a fresh one. An ask is written here and
 * wakes the host's pump on a channel of its own (typing never costs a look here); the pump has the guest take the diff and writes it
 * back, which wakes the asker on the task channel.
 */
import type { GuestDiff } from '../diff.js';
import { CHANNELS } from './channels.js';
import type { Pool } from './pool.js';

export interface StoredDiff {
  requestedAt: Date | null;
  takenAt: Date | null;
  doc: GuestDiff | null;
  docAt: Date | null;
  error: string | null;
}

/** Asks for a fresh diff; returns the time of the ask (PostgreSQL's clock). */
export async function requestDiff(pool: Pool, taskId: string): Promise<Date> {
  const { rows } = await pool.query<{ at: Date }>(
    `WITH a AS (INSERT INTO task_diffs (task_id, requested_at) VALUES ($1, clock_timestamp())
                ON CONFLICT (task_id) DO UPDATE SET requested_at = EXCLUDED.requested_at
                RETURNING requested_at AS at)
     SELECT at, pg_notify('${CHANNELS.diff}', $1) FROM a`,
    [taskId],
  );
  return rows[0]!.at;
}

/** The ask the pump has not answered yet, if any. */
export async function pendingDiffRequest(pool: Pool, taskId: string): Promise<Date | undefined> {
  const { rows } = await pool.query<{ at: Date }>(
    `SELECT requested_at AS at FROM task_diffs
     WHERE task_id = $1 AND requested_at IS NOT NULL AND (taken_at IS NULL OR taken_at < requested_at)`,
    [taskId],
  );
  return rows[0]?.at;
}

/** Stores what the guest gave (a diff, or why not) as taken now; answers every ask made before. */
export async function saveDiff(
  pool: Pool,
  taskId: string,
  r: { doc: GuestDiff } | { error: string },
): Promise<void> {
  const doc = 'doc' in r ? JSON.stringify(r.doc) : null;
  const error = 'error' in r ? r.error : null;
  await pool.query(
    `WITH s AS (INSERT INTO task_diffs (task_id, taken_at, doc, doc_at, error)
                VALUES ($1, clock_timestamp(), $2, CASE WHEN $2::jsonb IS NULL THEN NULL ELSE clock_timestamp() END, $3)
                ON CONFLICT (task_id) DO UPDATE SET taken_at = EXCLUDED.taken_at,
                  doc = COALESCE(EXCLUDED.doc, task_diffs.doc),
                  doc_at = COALESCE(EXCLUDED.doc_at, task_diffs.doc_at), error = EXCLUDED.error
                RETURNING task_id)
     SELECT pg_notify('${CHANNELS.task}', task_id) FROM s`,
    [taskId, doc, error],
  );
}

export async function storedDiff(pool: Pool, taskId: string): Promise<StoredDiff | undefined> {
  const { rows } = await pool.query<StoredDiff>(
    `SELECT requested_at AS "requestedAt", taken_at AS "takenAt", doc, doc_at AS "docAt", error FROM task_diffs WHERE task_id = $1`,
    [taskId],
  );
  return rows[0];
}
