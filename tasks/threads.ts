/**
 * Each task's Discord thread: where the bot posts its state changes and output tail, and whose
 * messages (from the owner) become the agent's input. Kept in PostgreSQL, so it outlives a bot
 * restart.
 */
import type { Pool } from '../common/db/pool.js';

export interface ThreadRow {
  taskId: string;
  threadId: string;
  channelId: string;
  lastStatus: string | null;
  postedSeq: number;
  summaryPosted: boolean;
  /** The last turn of a headless conversation whose summary is posted. */
  turnsPosted: number;
  /** The task's pull request outcomes posted (its `pr_events` when the last was). */
  prPosted: number;
}

/** A question's message in the thread (its buttons go once it is settled). */
export interface QuestionPost {
  questionId: string;
  messageId: string;
  settled: boolean;
}

const COLUMNS = `task_id AS "taskId", thread_id AS "threadId", channel_id AS "channelId",
  last_status AS "lastStatus", posted_seq::float8 AS "postedSeq", summary_posted AS "summaryPosted",
  turns_posted AS "turnsPosted", pr_posted AS "prPosted"`;

export class ThreadRecords {
  constructor(private readonly pool: Pool) {}

  async save(t: Pick<ThreadRow, 'taskId' | 'threadId' | 'channelId'>): Promise<void> {
    await this.pool.query(
      'INSERT INTO discord_threads (task_id, thread_id, channel_id) VALUES ($1, $2, $3) ON CONFLICT (task_id) DO NOTHING',
      [t.taskId, t.threadId, t.channelId],
    );
  }

  async ofTask(taskId: string): Promise<ThreadRow | undefined> {
    const { rows } = await this.pool.query<ThreadRow>(
      `SELECT ${COLUMNS} FROM discord_threads WHERE task_id = $1`,
      [taskId],
    );
    return rows[0];
  }

  async byThread(threadId: string): Promise<ThreadRow | undefined> {
    const { rows } = await this.pool.query<ThreadRow>(
      `SELECT ${COLUMNS} FROM discord_threads WHERE thread_id = $1`,
      [threadId],
    );
    return rows[0];
  }

  /** Threads of tasks that have not ended: the ones the bot still reports on. */
  async live(): Promise<ThreadRow[]> {
    const { rows } = await this.pool.query<ThreadRow>(
      `SELECT ${COLUMNS} FROM discord_threads d
       WHERE d.last_status IS NULL OR d.last_status NOT IN ('terminated', 'failed')`,
    );
    return rows;
  }

  /** The thread is gone (deleted, locked, or closed to the bot): the task no longer has one. */
  async forget(taskId: string): Promise<void> {
    await this.pool.query('DELETE FROM discord_threads WHERE task_id = $1', [taskId]);
  }

  async markPosted(taskId: string, p: { status?: string; seq?: number; summary?: boolean }): Promise<void> {
    await this.pool.query(
      `UPDATE discord_threads SET last_status = COALESCE($2, last_status),
         posted_seq = GREATEST(posted_seq, COALESCE($3, posted_seq)),
         summary_posted = summary_posted OR $4 WHERE task_id = $1`,
      [taskId, p.status ?? null, p.seq ?? null, p.summary ?? false],
    );
  }

  async markTurnsPosted(taskId: string, n: number): Promise<void> {
    await this.pool.query(
      'UPDATE discord_threads SET turns_posted = GREATEST(turns_posted, $2), summary_posted = true WHERE task_id = $1',
      [taskId, n],
    );
  }

  async markPullRequestPosted(taskId: string, events: number): Promise<void> {
    await this.pool.query(
      'UPDATE discord_threads SET pr_posted = GREATEST(pr_posted, $2) WHERE task_id = $1',
      [taskId, events],
    );
  }

  async questionPosts(taskId: string): Promise<QuestionPost[]> {
    const { rows } = await this.pool.query<QuestionPost>(
      `SELECT question_id AS "questionId", message_id AS "messageId", settled
       FROM discord_question_posts WHERE task_id = $1`,
      [taskId],
    );
    return rows;
  }

  async saveQuestionPost(taskId: string, p: QuestionPost): Promise<void> {
    await this.pool.query(
      `INSERT INTO discord_question_posts (task_id, question_id, message_id, settled) VALUES ($1, $2, $3, $4)
       ON CONFLICT (task_id, question_id) DO UPDATE SET message_id = EXCLUDED.message_id,
         settled = discord_question_posts.settled OR EXCLUDED.settled`,
      [taskId, p.questionId, p.messageId, p.settled],
    );
  }
}
