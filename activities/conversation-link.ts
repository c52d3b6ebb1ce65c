/**
 * The output pump's conversation half, between a task's sidecar and its workflow and records:
 *
 *   guest question ──► checked, trimmed to a preview ──► `agentQuestion` signal (the workflow
 *                      decides, and records the question and its answer in PostgreSQL)
 *   decided answer (PostgreSQL) ──► `answer` frame ──► the hook that waits ──► `answer-ack`
 *   queued turn (PostgreSQL)    ──► `turn` frame   ──► the driver's queue  ──► `turn-ack`
 *
 * Answers and turns are sent on every attach and whenever the input channel wakes the pump, and
 * marked delivered only once the sidecar acknowledges them: a worker that dies in between sends
 * them again, and the sidecar takes each once. A question the sidecar sends again after a
 * reconnect is signalled again only if the workflow has not recorded it (and the workflow takes
 * each id once). Questions are not agent activity: they move no idle deadline.
 */

import { CONVERSATION_LIMITS, describeDecision } from '../common/conversation.js';
import {
  markAnswerDelivered,
  markTurnDelivered,
  questionKnown,
  queuedTurns,
  undeliveredAnswers,
} from '../common/db/conversation.js';
import { coalesced } from '../common/rerun.js';
import { previewToolUse } from '../common/tool-preview.js';
import type { SidecarMessage } from '../vm/protocol.js';
import type { SidecarConnection } from '../vm/sidecar/client.js';
import { agentQuestionSignal, questionWithdrawnSignal } from '../workflows/definitions.js';
import type { HostActivityDeps } from './deps.js';

type Question = Extract<SidecarMessage, { type: 'question' }>;

/** Question signals: a burst, then one per interval; a bounded queue; a cap per pump's life. */
const QUESTION_BURST = 10;
const QUESTION_INTERVAL_MS = 2000;
const MAX_QUEUED_QUESTIONS = 32;
const MAX_QUESTIONS_PER_PUMP = 10_000;

export class ConversationLink {
  /** Ids signalled by this pump (a reconnect of the same pump sends them again). */
  private readonly signalled = new Set<string>();
  private owner: string | undefined;
  /** Question signals allowed now (a token bucket), and questions waiting for one. */
  private tokens = QUESTION_BURST;
  private refilledAt = Date.now();
  private waiting = 0;

  constructor(
    private readonly d: HostActivityDeps,
    private readonly conn: SidecarConnection,
    private readonly taskId: string,
    /** A failure the pump cannot go on after (the database refusing, say): it ends the pump. */
    private readonly fail: (err: unknown) => void,
  ) {}

  /** Handles a conversation frame from the sidecar; false when the frame is not one. */
  onFrame(m: SidecarMessage, body: Buffer): boolean {
    switch (m.type) {
      case 'question':
        void this.question(m, body);
        return true;
      case 'question-gone':
        void this.untilSent(() =>
          this.d.client.workflow.getHandle(this.taskId).signal(questionWithdrawnSignal, { id: m.id }),
        );
        return true;
      case 'answer-ack':
        void markAnswerDelivered(this.d.pool, this.taskId, m.id).catch(this.fail);
        return true;
      case 'turn-ack':
        void markTurnDelivered(this.d.pool, this.taskId, m.n).catch(this.fail);
        return true;
      default:
        return false;
    }
  }

  /** Sends what waits in PostgreSQL for the guest: decided answers, then queued turns. */
  readonly deliver = coalesced(async () => {
    if (this.conn.isClosed) return;
    try {
      const answers = await undeliveredAnswers(this.d.pool, this.taskId);
      if (answers.length && this.owner === undefined)
        this.owner = (
          await this.d.pool.query('SELECT owner FROM tasks WHERE id = $1', [this.taskId])
        ).rows[0]?.owner;
      for (const a of answers) {
        const who = a.by === null ? '' : a.by === this.owner ? 'the owner' : `user ${a.by}`;
        this.conn.send({
          type: 'answer',
          id: a.id,
          decision: a.decision,
          message: a.message,
          note: describeDecision({ decision: a.decision, how: a.how, by: a.by }, who),
        });
      }
      for (const t of await queuedTurns(this.d.pool, this.taskId))
        this.conn.send({ type: 'turn', n: t.n }, Buffer.from(t.text, 'utf8'));
    } catch (err) {
      this.fail(err);
    }
  });

  private async question(m: Question, body: Buffer): Promise<void> {
    if (this.signalled.has(m.id)) return;
    // A guest that floods questions must not flood the workflow's history: past the queue, a
    // question is left for the sidecar to send again on the next attach (the hook waits).
    if (this.waiting >= MAX_QUEUED_QUESTIONS || this.signalled.size >= MAX_QUESTIONS_PER_PUMP) {
      this.d.logger.warn({ taskId: this.taskId }, 'too many questions from the guest; this one waits');
      return;
    }
    this.signalled.add(m.id);
    const preview = previewToolUse(m.tool, parseInput(body), CONVERSATION_LIMITS);
    this.waiting++;
    try {
      await this.paced();
    } finally {
      this.waiting--;
    }
    await this.untilSent(async () => {
      if (await questionKnown(this.d.pool, this.taskId, m.id)) return;
      await this.d.client.workflow
        .getHandle(this.taskId)
        .signal(agentQuestionSignal, { id: m.id, tool: m.tool, ...preview });
    });
  }

  /** At most one question signal per QUESTION_INTERVAL_MS after a burst of QUESTION_BURST. */
  private async paced(): Promise<void> {
    const now = Date.now();
    this.tokens = Math.min(QUESTION_BURST, this.tokens + (now - this.refilledAt) / QUESTION_INTERVAL_MS);
    this.refilledAt = now;
    this.tokens -= 1;
    if (this.tokens < 0) await new Promise((r) => setTimeout(r, -this.tokens * QUESTION_INTERVAL_MS));
  }

  /**
   * Tries until it succeeds or the connection is gone (Temporal or PostgreSQL away for a while):
   * the sidecar sends a waiting question again only on the next attach.
   */
  private async untilSent(send: () => Promise<void>): Promise<void> {
    for (let pause = 500; !this.conn.isClosed; pause = Math.min(pause * 2, 30_000)) {
      try {
        await send();
        return;
      } catch (err) {
        this.d.logger.warn(
          { taskId: this.taskId, err: (err as Error).message, retryInMs: pause },
          'could not tell the workflow about a question; trying again',
        );
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }
}

/**
 * The tool's input from the guest: a JSON object of bounded size, or (anything else) an empty
 * one: the preview then says there is no input, and the owner decides on what they see.
 */
export function parseInput(body: Buffer): Record<string, unknown> {
  if (body.length > CONVERSATION_LIMITS.toolInputBytes)
    return { note: '(the tool input was too large to show)' };
  try {
    const v = JSON.parse(body.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
