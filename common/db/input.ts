import type { TaskStatus } from '../task.js';
import { CHANNELS } from './channels.js';
import type { Pool } from './pool.js';

export type InputItem =
  | { id: number; kind: 'stdin'; data: Buffer }
  | { id: number; kind: 'resize'; cols: number; rows: number };

/** Who sent an input and its number: a client's repeat of a number it sent before is ignored. */
export interface InputOrigin {
  sender: string;
  seq: number;
}

/**
 * Queues terminal input for the host that holds the task's VM, and wakes it. With an origin,
 * input numbered at or below the sender's last stored one is a repeat and is not queued again;
 * either way the input is stored when this resolves.
 *
 * Stores nothing for a task that has ended. Returns the task's status as of the insert (undefined
 * for no such task), read under a share lock on its row: a workflow
 * that records `suspending` either waits for this insert (and then finds the input when it
 * checks after suspending) or has committed first (and then this sees `suspending`). So input
 * that arrives while a task is being suspended is never left unseen in a suspended task.
 */
export async function enqueueInput(
  pool: Pool,
  taskId: string,
  item: { kind: 'stdin'; data: Buffer } | { kind: 'resize'; cols: number; rows: number },
  origin?: InputOrigin,
): Promise<TaskStatus | undefined> {
  const values = [
    taskId,
    item.kind,
    item.kind === 'stdin' ? item.data : null,
    item.kind === 'resize' ? item.cols : null,
    item.kind === 'resize' ? item.rows : null,
    CHANNELS.input,
  ];
  const status = `(SELECT status FROM t)`;
  // One stored resize per task: a newer one replaces any the VM has not taken yet.
  if (item.kind === 'resize')
    await pool.query(`DELETE FROM task_input WHERE task_id = $1 AND kind = 'resize'`, [taskId]);
  // An ended task takes no input: nothing is stored for it (its leftovers were already dropped).
  const open = `t.status NOT IN ('terminated', 'failed')`;
  if (!origin) {
    const { rows } = await pool.query<{ status: TaskStatus }>(
      `WITH t AS (SELECT status FROM tasks WHERE id = $1 FOR SHARE),
       ins AS (INSERT INTO task_input (task_id, kind, data, cols, rows)
         SELECT $1::text, $2::text, $3::bytea, $4::int, $5::int FROM t WHERE ${open} RETURNING 1),
       n AS (SELECT pg_notify($6, $1) FROM ins)
       SELECT ${status} AS status FROM (SELECT count(*) FROM n) c`,
      values,
    );
    return rows[0]?.status;
  }
  // The sender's row is locked by the upsert, so two connections of one client (a dying one and
  // its replacement) cannot both store the same number.
  const { rows } = await pool.query<{ status: TaskStatus }>(
    `WITH t AS (SELECT status FROM tasks WHERE id = $1 FOR SHARE),
     s AS (
       INSERT INTO input_senders (task_id, sender, last_seq) SELECT $1, $7, $8 FROM t WHERE ${open}
       ON CONFLICT (task_id, sender) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()
         WHERE input_senders.last_seq < EXCLUDED.last_seq
       RETURNING 1
     ), ins AS (
       INSERT INTO task_input (task_id, kind, data, cols, rows)
       SELECT $1::text, $2::text, $3::bytea, $4::int, $5::int FROM s RETURNING 1
     ), n AS (SELECT pg_notify($6, $1) FROM ins)
     SELECT ${status} AS status FROM (SELECT count(*) FROM n) c`,
    [...values, origin.sender, origin.seq],
  );
  return rows[0]?.status;
}

/** Bytes of input waiting for the task's VM. */
export async function pendingInputBytes(pool: Pool, taskId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT coalesce(sum(length(data)), 0)::float8 AS n FROM task_input WHERE task_id = $1',
    [taskId],
  );
  return rows[0]?.n ?? 0;
}

/** Whether input waits for the task's VM (checked after a suspend: typing resumes the task). */
export async function hasInput(pool: Pool, taskId: string): Promise<boolean> {
  const { rows } = await pool.query('SELECT 1 FROM task_input WHERE task_id = $1 LIMIT 1', [taskId]);
  return rows.length > 0;
}

/** Input queued after `afterId`, oldest first. */
export async function pendingInput(
  pool: Pool,
  taskId: string,
  afterId = 0,
  limit = 500,
): Promise<InputItem[]> {
  const { rows } = await pool.query<{
    id: number;
    kind: 'stdin' | 'resize';
    data: Buffer;
    cols: number;
    rows: number;
  }>(
    'SELECT id, kind, data, cols, rows FROM task_input WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3',
    [taskId, afterId, limit],
  );
  return rows.map((r) =>
    r.kind === 'stdin'
      ? { id: r.id, kind: 'stdin', data: r.data }
      : { id: r.id, kind: 'resize', cols: r.cols, rows: r.rows },
  );
}

/** Forgets input up to and including `uptoId` once it reached the sidecar. */
export async function consumeInput(pool: Pool, taskId: string, uptoId: number): Promise<void> {
  await pool.query('DELETE FROM task_input WHERE task_id = $1 AND id <= $2', [taskId, uptoId]);
}
