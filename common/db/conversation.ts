/**
 * A task's conversation in PostgreSQL: the questions its agent asked and how each was settled
 * (written by the workflow's control activities), and the turns of a headless conversation
 * (queued by the task service, delivered and followed by the host's pump). Every change bumps the
 * task's `conversation_at` and tells the task's watchers (the API's streams, the bot's threads);
 * a decided answer or a queued turn also wakes the host's pump (the input channel).
 */
import type { DecisionView, QuestionView, TurnStatus, TurnView } from '../conversation.js';
import type { HeadlessSummary } from '../task.js';
import { CHANNELS } from './channels.js';
import { inTransaction, type Pool, type PoolClient } from './pool.js';

/** Marks the task's conversation changed and tells its watchers (and, with `pump`, its host). */
const touched = (taskParam: string, pump: boolean) =>
  `, bump AS (UPDATE tasks SET conversation_at = clock_timestamp() WHERE id = ${taskParam} RETURNING id)
   SELECT pg_notify('${CHANNELS.task}', id)${pump ? `, pg_notify('${CHANNELS.input}', id)` : ''} FROM bump`;

/** A question the agent asked (the first time the workflow hears of it; again is a no-op). */
export async function recordQuestion(pool: Pool, taskId: string, q: QuestionView): Promise<void> {
  await pool.query(
    `WITH ins AS (
       INSERT INTO task_questions (task_id, id, tool, summary, detail, asked_at, deadline)
       VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0), to_timestamp($7 / 1000.0))
       ON CONFLICT (task_id, id) DO NOTHING RETURNING 1
     )${touched('$1', false)}`,
    [taskId, q.id, q.tool, q.summary, q.detail, q.askedAt, q.deadline],
  );
}

/**
 * How a question was settled, and what the agent is told. Carries the question too: a decision
 * may be recorded before the question's own record (both come from the workflow, concurrently).
 * A question already settled keeps its first decision.
 */
export async function recordDecision(
  pool: Pool,
  taskId: string,
  q: QuestionView,
  d: DecisionView,
  message: string,
): Promise<void> {
  await pool.query(
    `WITH up AS (
       INSERT INTO task_questions (task_id, id, tool, summary, detail, asked_at, deadline,
                                   decision, how, decided_by, decided_at, message)
       VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0), to_timestamp($7 / 1000.0),
               $8, $9, $10, to_timestamp($11 / 1000.0), $12)
       ON CONFLICT (task_id, id) DO UPDATE SET decision = EXCLUDED.decision, how = EXCLUDED.how,
         decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, message = EXCLUDED.message
         WHERE task_questions.decision IS NULL
       RETURNING 1
     )${touched('$1', true)}`,
    [
      taskId,
      q.id,
      q.tool,
      q.summary,
      q.detail,
      q.askedAt,
      q.deadline,
      d.decision,
      d.how,
      d.by,
      d.at,
      message,
    ],
  );
}

/** Whether the workflow has recorded this question (the pump then need not tell it again). */
export async function questionKnown(pool: Pool, taskId: string, id: string): Promise<boolean> {
  const { rows } = await pool.query('SELECT 1 FROM task_questions WHERE task_id = $1 AND id = $2', [
    taskId,
    id,
  ]);
  return rows.length > 0;
}

export interface UndeliveredAnswer {
  id: string;
  decision: 'allow' | 'deny';
  message: string;
  how: DecisionView['how'];
  by: string | null;
}

/** Decided answers the guest has not acknowledged yet, oldest first. */
export async function undeliveredAnswers(pool: Pool, taskId: string): Promise<UndeliveredAnswer[]> {
  const { rows } = await pool.query<UndeliveredAnswer>(
    `SELECT id, decision, coalesce(message, '') AS message, how, decided_by AS by FROM task_questions
     WHERE task_id = $1 AND decision IS NOT NULL AND delivered_at IS NULL ORDER BY decided_at, id LIMIT 64`,
    [taskId],
  );
  return rows;
}

/** Whether an answer waits for the guest (a resumed task delivers it). */
export async function hasUndeliveredAnswers(pool: Pool, taskId: string): Promise<boolean> {
  const { rows } = await pool.query(
    'SELECT 1 FROM task_questions WHERE task_id = $1 AND decision IS NOT NULL AND delivered_at IS NULL LIMIT 1',
    [taskId],
  );
  return rows.length > 0;
}

export async function markAnswerDelivered(pool: Pool, taskId: string, id: string): Promise<void> {
  await pool.query(
    'UPDATE task_questions SET delivered_at = now() WHERE task_id = $1 AND id = $2 AND delivered_at IS NULL',
    [taskId, id],
  );
}

const QUESTION_COLUMNS = `id, tool, summary, detail, (extract(epoch FROM asked_at) * 1000)::float8 AS "askedAt",
  (extract(epoch FROM deadline) * 1000)::float8 AS "deadline"`;

/** Questions still waiting for an answer, oldest first. */
export async function openQuestions(pool: Pool, taskId: string): Promise<QuestionView[]> {
  const { rows } = await pool.query<QuestionView>(
    `SELECT ${QUESTION_COLUMNS} FROM task_questions WHERE task_id = $1 AND decision IS NULL ORDER BY asked_at, id`,
    [taskId],
  );
  return rows;
}

/** Settled questions, newest first. */
export async function decisions(pool: Pool, taskId: string, limit = 100): Promise<DecisionView[]> {
  const { rows } = await pool.query<DecisionView>(
    `SELECT id AS "questionId", tool, summary, decision, how, decided_by AS by,
       (extract(epoch FROM decided_at) * 1000)::float8 AS at
     FROM task_questions WHERE task_id = $1 AND decision IS NOT NULL ORDER BY decided_at DESC, id LIMIT $2`,
    [taskId, limit],
  );
  return rows;
}

/** A question with its decision, if any (the bot edits its thread message by it). */
export async function questionsOf(
  pool: Pool,
  taskId: string,
): Promise<(QuestionView & { decision: DecisionView | null })[]> {
  const { rows } = await pool.query<
    QuestionView & {
      decision: 'allow' | 'deny' | null;
      how: DecisionView['how'];
      by: string | null;
      at: number;
    }
  >(
    `SELECT ${QUESTION_COLUMNS}, decision, how, decided_by AS by,
       (extract(epoch FROM decided_at) * 1000)::float8 AS at
     FROM task_questions WHERE task_id = $1 ORDER BY asked_at, id`,
    [taskId],
  );
  return rows.map(({ decision, how, by, at, ...q }) => ({
    ...q,
    decision: decision ? { questionId: q.id, tool: q.tool, summary: q.summary, decision, how, by, at } : null,
  }));
}

// ---- turns ------------------------------------------------------------------------------------

/** The first turn (the prompt), which the agent's command carries: delivered from the start. */
export async function createFirstTurn(
  client: PoolClient,
  taskId: string,
  text: string,
  author: string,
): Promise<void> {
  await client.query(
    `INSERT INTO task_turns (task_id, n, text, author, status) VALUES ($1, 1, $2, $3, 'delivered')`,
    [taskId, text, author],
  );
}

export type EnqueueTurnResult =
  | { n: number; ahead: number }
  | { refused: 'too-many'; waiting: number }
  | { refused: 'no-conversation' };

/**
 * Queues a follow-up turn (numbered after the last), unless `maxWaiting` turns already wait for
 * the agent. `ahead`: the turns before it that are not done (the one running included).
 */
export async function enqueueTurn(
  pool: Pool,
  taskId: string,
  text: string,
  author: string,
  maxWaiting: number,
  /** The turn asks for the pull request: opened when it ends (issue 20). */
  openPr = false,
): Promise<EnqueueTurnResult> {
  return inTransaction<EnqueueTurnResult>(pool, async (client) => {
    // One numbering at a time per task.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`lia:turns:${taskId}`]);
    const { rows } = await client.query<{ last: number | null; open: number; waiting: number }>(
      `SELECT max(n) AS last, count(*) FILTER (WHERE status <> 'done')::int AS open,
         count(*) FILTER (WHERE status IN ('queued', 'delivered'))::int AS waiting
       FROM task_turns WHERE task_id = $1`,
      [taskId],
    );
    const r = rows[0];
    if (!r?.last) return { rollback: { refused: 'no-conversation' } };
    if (r.waiting >= maxWaiting) return { rollback: { refused: 'too-many', waiting: r.waiting } };
    const n = r.last + 1;
    await client.query(
      `WITH ins AS (INSERT INTO task_turns (task_id, n, text, author, status, open_pr)
                    VALUES ($1, $2, $3, $4, 'queued', $5) RETURNING 1)
       ${touched('$1', true)}`,
      [taskId, n, text, author, openPr],
    );
    return { n, ahead: r.open };
  });
}

/** Turns queued for the VM, in order. */
export async function queuedTurns(
  pool: Pool,
  taskId: string,
  limit = 8,
): Promise<{ n: number; text: string }[]> {
  const { rows } = await pool.query<{ n: number; text: string }>(
    `SELECT n, text FROM task_turns WHERE task_id = $1 AND status = 'queued' ORDER BY n LIMIT $2`,
    [taskId, limit],
  );
  return rows;
}

/** Whether a turn waits in PostgreSQL for the VM (a suspended task is resumed for it). */
export async function hasQueuedTurns(pool: Pool, taskId: string): Promise<boolean> {
  const { rows } = await pool.query(
    `SELECT 1 FROM task_turns WHERE task_id = $1 AND status = 'queued' LIMIT 1`,
    [taskId],
  );
  return rows.length > 0;
}

/** The turn reached the VM (only from queued: a later state is never taken back). */
export async function markTurnDelivered(pool: Pool, taskId: string, n: number): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE task_turns SET status = 'delivered' WHERE task_id = $1 AND n = $2 AND status = 'queued' RETURNING 1)
     ${touched('$1', false)}`,
    [taskId, n],
  );
}

/** The guest says turn `n` started (every turn before it has, then, reached the VM). */
export async function markTurnRunning(pool: Pool, taskId: string, n: number): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE task_turns SET status = 'running', started_at = coalesce(started_at, now())
                 WHERE task_id = $1 AND n = $2 AND status IN ('queued', 'delivered') RETURNING 1)
     ${touched('$1', false)}`,
    [taskId, n],
  );
}

/** The guest says turn `n` ended, with its summary (the task's latest summary too). */
export async function finishTurn(pool: Pool, taskId: string, n: number, s: HeadlessSummary): Promise<void> {
  const result = { text: s.result, isError: s.isError, numTurns: s.numTurns };
  // One UPDATE of the task's row: PostgreSQL applies only one of two updates of the same row in
  // one statement (the summary was lost to the conversation_at bump).
  await pool.query(
    `WITH u AS (UPDATE task_turns SET status = 'done', finished_at = now(), result = $3
                 WHERE task_id = $1 AND n = $2 AND status <> 'done' RETURNING 1),
     bump AS (UPDATE tasks SET summary = $4, updated_at = now(), conversation_at = clock_timestamp()
              WHERE id = $1 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM bump`,
    [taskId, n, JSON.stringify(result), JSON.stringify(s)],
  );
}

const TURN_COLUMNS = `n, text, author, status, created_at AS "createdAt", result`;

/** The last `limit` turns, oldest first. */
export async function turnsOf(pool: Pool, taskId: string, limit = 50): Promise<TurnView[]> {
  const { rows } = await pool.query<Omit<TurnView, 'createdAt'> & { createdAt: Date }>(
    `SELECT * FROM (SELECT ${TURN_COLUMNS} FROM task_turns WHERE task_id = $1 ORDER BY n DESC LIMIT $2) t ORDER BY n`,
    [taskId, limit],
  );
  return rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() }));
}

/** Done turns after `afterN`, in order (the bot posts their summaries). */
export async function doneTurnsAfter(pool: Pool, taskId: string, afterN: number): Promise<TurnView[]> {
  const { rows } = await pool.query<Omit<TurnView, 'createdAt'> & { createdAt: Date }>(
    `SELECT ${TURN_COLUMNS} FROM task_turns WHERE task_id = $1 AND n > $2 AND status = 'done' ORDER BY n LIMIT 10`,
    [taskId, afterN],
  );
  return rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() }));
}

export type { TurnStatus };
