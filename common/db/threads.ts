import type { Pool } from './pool.js';

export interface ThreadRow {
  taskId: string;
  threadId: string;
  channelId: string;
  lastStatus: string | null;
  postedSeq: number;
  summaryPosted: boolean;
}

const COLUMNS = `task_id AS "taskId", thread_id AS "threadId", channel_id AS "channelId",
  last_status AS "lastStatus", posted_seq::float8 AS "postedSeq", summary_posted AS "summaryPosted"`;

export async function saveThread(pool: Pool, t: Pick<ThreadRow, 'taskId' | 'threadId' | 'channelId'>) {
  await pool.query(
    'INSERT INTO discord_threads (task_id, thread_id, channel_id) VALUES ($1, $2, $3) ON CONFLICT (task_id) DO NOTHING',
    [t.taskId, t.threadId, t.channelId],
  );
}

export async function threadOfTask(pool: Pool, taskId: string): Promise<ThreadRow | undefined> {
  const { rows } = await pool.query<ThreadRow>(`SELECT ${COLUMNS} FROM discord_threads WHERE task_id = $1`, [
    taskId,
  ]);
  return rows[0];
}

export async function taskOfThread(pool: Pool, threadId: string): Promise<ThreadRow | undefined> {
  const { rows } = await pool.query<ThreadRow>(
    `SELECT ${COLUMNS} FROM discord_threads WHERE thread_id = $1`,
    [threadId],
  );
  return rows[0];
}

/** Threads of tasks that have not ended: the ones the bot still reports on. */
export async function liveThreads(pool: Pool): Promise<ThreadRow[]> {
  const { rows } = await pool.query<ThreadRow>(
    `SELECT ${COLUMNS} FROM discord_threads d
     WHERE d.last_status IS NULL OR d.last_status NOT IN ('terminated', 'failed')`,
  );
  return rows;
}

export async function markPosted(
  pool: Pool,
  taskId: string,
  p: { status?: string; seq?: number; summary?: boolean },
) {
  await pool.query(
    `UPDATE discord_threads SET last_status = COALESCE($2, last_status),
       posted_seq = GREATEST(posted_seq, COALESCE($3, posted_seq)),
       summary_posted = summary_posted OR $4 WHERE task_id = $1`,
    [taskId, p.status ?? null, p.seq ?? null, p.summary ?? false],
  );
}
