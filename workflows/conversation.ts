/**
 * The task's questions, in the workflow: what the agent asked before a tool use, the owner's
 * answers, the always-allowed tools, and the deadline after which nobody's answer is a denial.
 * Deterministic: the clock is Temporal's, records go through the control activities. Every
 * question and answer is in the history (a signal, an update), so the Temporal UI shows them.
 *
 * Nothing here runs a command until a question comes: histories from before it replay unchanged.
 */
import { ApplicationFailure, condition, log, patched, setHandler } from '@temporalio/workflow';
import {
  type AskedQuestion,
  CHOICES,
  CONVERSATION_LIMITS,
  type ConversationState,
  type DecisionHow,
  type DecisionView,
  QUESTION_ID_RE,
  type QuestionView,
  TOOL_NAME_RE,
} from '../common/conversation.js';
import type { TaskState } from '../common/task.js';
import {
  agentQuestionSignal,
  answerUpdate,
  CONVERSATION_PATCH,
  questionWithdrawnSignal,
} from './definitions.js';
import { control } from './proxies.js';

/** A day: the deadline of questions in tasks whose input names none (started before it existed). */
const DEFAULT_QUESTION_TIMEOUT_MS = 24 * 3_600_000;

export interface Conversation {
  /** A person answered while the task is suspended (or being suspended): the loop resumes it. */
  readonly answerWaiting: () => boolean;
  clearAnswerWaiting(): void;
  /** No record is being written (continue-as-new waits for it). */
  readonly idle: () => boolean;
  /** The task is ending: questions still waiting are settled as withdrawn. */
  withdrawAll(): Promise<void>;
}

/** "90 seconds", "30 minutes", "24 hours". */
function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} seconds`;
  if (s < 7200) return `${Math.round(s / 60)} minutes`;
  return `${Math.round(s / 3600)} hours`;
}

/** What the agent is told with each decision (the hook's reason, which the model reads). */
function messageFor(d: DecisionView, timeoutMs: number): string {
  switch (d.how) {
    case 'once':
    case 'always':
      return "Allowed by the task's owner.";
    case 'rule':
      return "Allowed: the task's owner always allows this tool in this task.";
    case 'deny':
      return "The task's owner denied this tool use. Do not try to get the same effect another way; say what you wanted to do and why, and wait for their next message.";
    case 'timeout':
      return `Nobody answered the permission question within ${duration(timeoutMs)}, so the tool was not run. Say what you wanted to do, and go on without it or stop.`;
    case 'limit':
      return `Denied: ${CONVERSATION_LIMITS.pendingQuestions} permission questions were already waiting for the owner.`;
    case 'withdrawn':
      return 'Withdrawn: nobody waits for this answer any more.';
  }
}

export function startConversation(
  state: TaskState,
  opts: { questionTimeoutMs?: number; stopped: () => boolean },
): Conversation {
  const timeoutMs = opts.questionTimeoutMs ?? DEFAULT_QUESTION_TIMEOUT_MS;
  const conv = (): ConversationState =>
    (state.conversation ??= { questions: [], decisions: [], settled: [], allowedTools: [] });
  let answerWaiting = false;
  let writing = 0;
  /** Bumped whenever the waiting questions change: the deadline watch re-arms. */
  let version = 0;

  /**
   * Starts a record (a local activity) at once and does not wait for it. Handlers and the
   * deadline watch never wait on a record before their next command: two chains that resume on
   * local-activity results in the same activation would order their commands by microtask counts,
   * and replay may group those results differently (a recorded history failed so: the update's
   * completion and the main loop's restoreVm swapped). Only withdrawAll, on the main loop alone,
   * waits for its records.
   */
  const write = (fn: () => Promise<void>): Promise<void> => {
    writing++;
    return fn()
      .catch((err) => log.warn('a conversation record failed', { error: String(err) }))
      .finally(() => {
        writing--;
      });
  };

  /**
   * Settles a question: out of the waiting list, into the decisions, recorded (and so delivered).
   * Synchronous: every command it gives is given before it returns.
   */
  function settle(
    q: QuestionView,
    decision: 'allow' | 'deny',
    how: DecisionHow,
    by: string | null,
  ): { d: DecisionView; written: Promise<unknown> } {
    const c = conv();
    c.questions = c.questions.filter((x) => x.id !== q.id);
    c.settled = [...c.settled, q.id].slice(-CONVERSATION_LIMITS.settledIdsInState);
    const d: DecisionView = {
      questionId: q.id,
      tool: q.tool,
      summary: q.summary,
      decision,
      how,
      by,
      at: Date.now(),
    };
    c.decisions = [...c.decisions, d].slice(-CONVERSATION_LIMITS.decisionsInState);
    version++;
    if (by && (state.status === 'suspended' || state.status === 'suspending')) answerWaiting = true;
    const written: Promise<unknown>[] = [
      write(() =>
        control.recordDecision({
          taskId: state.taskId,
          question: q,
          decision: d,
          message: messageFor(d, timeoutMs),
        }),
      ),
    ];
    if (how === 'always') {
      if (!c.allowedTools.includes(q.tool) && c.allowedTools.length < CONVERSATION_LIMITS.allowedTools)
        c.allowedTools.push(q.tool);
      // The same tool's other questions are answered by the rule just made.
      for (const o of c.questions.filter((x) => x.tool === q.tool))
        written.push(settle(o, 'allow', 'rule', null).written);
    }
    return { d, written: Promise.all(written) };
  }

  setHandler(agentQuestionSignal, (asked: AskedQuestion) => {
    // The pump checked it; the history is kept small and sane whoever signals.
    if (
      !asked ||
      typeof asked.id !== 'string' ||
      !QUESTION_ID_RE.test(asked.id) ||
      typeof asked.tool !== 'string' ||
      !TOOL_NAME_RE.test(asked.tool)
    )
      return;
    const c = conv();
    if (c.questions.some((x) => x.id === asked.id) || c.settled.includes(asked.id)) return;
    patched(CONVERSATION_PATCH);
    const now = Date.now();
    const q: QuestionView = {
      id: asked.id,
      tool: asked.tool,
      summary: String(asked.summary ?? '').slice(0, CONVERSATION_LIMITS.summaryChars),
      detail: String(asked.detail ?? '').slice(0, CONVERSATION_LIMITS.detailChars),
      askedAt: now,
      deadline: now + timeoutMs,
    };
    if (c.allowedTools.includes(q.tool)) {
      settle(q, 'allow', 'rule', null);
      return;
    }
    if (c.questions.length >= CONVERSATION_LIMITS.pendingQuestions) {
      settle(q, 'deny', 'limit', null);
      return;
    }
    c.questions.push(q);
    version++;
    void write(() => control.recordQuestion({ taskId: state.taskId, question: q }));
  });

  setHandler(questionWithdrawnSignal, ({ id }: { id: string }) => {
    const q = conv().questions.find((x) => x.id === id);
    if (q) settle(q, 'deny', 'withdrawn', null);
  });

  setHandler(
    answerUpdate,
    // Returns the decision at once: its record runs on (see `write`).
    async ({ questionId, choice, by }) => {
      const q = conv().questions.find((x) => x.id === questionId);
      if (!q) throw ApplicationFailure.nonRetryable(`question ${questionId} is no longer waiting`);
      return settle(q, choice === 'deny' ? 'deny' : 'allow', choice, by).d;
    },
    {
      validator: ({ questionId, choice, by }) => {
        if (!CHOICES.includes(choice)) throw new Error(`an answer is one of ${CHOICES.join(', ')}`);
        if (typeof by !== 'string' || !by) throw new Error('an answer says who gives it');
        const c = conv();
        if (c.questions.some((x) => x.id === questionId)) return;
        throw new Error(
          c.settled.includes(questionId)
            ? `question ${questionId} is already settled: ${c.decisions.find((d) => d.questionId === questionId)?.how ?? 'answered'}`
            : `task ${state.taskId} has no question ${questionId} waiting for an answer`,
        );
      },
    },
  );

  // The oldest question's deadline, re-armed whenever the waiting questions change. A timer runs
  // only while a question waits.
  void (async () => {
    for (;;) {
      const waiting = conv().questions;
      if (!waiting.length) {
        const seen = version;
        await condition(() => version !== seen || opts.stopped());
        if (opts.stopped()) return;
        continue;
      }
      const next = Math.min(...waiting.map((q) => q.deadline));
      const left = next - Date.now();
      if (left > 0) {
        const seen = version;
        await condition(() => version !== seen || opts.stopped(), left);
        if (opts.stopped()) return;
        continue;
      }
      for (const q of conv().questions.filter((x) => x.deadline <= Date.now()))
        if (conv().questions.some((x) => x.id === q.id)) settle(q, 'deny', 'timeout', null);
    }
  })();

  return {
    answerWaiting: () => answerWaiting,
    clearAnswerWaiting: () => {
      answerWaiting = false;
    },
    idle: () => writing === 0,
    async withdrawAll() {
      const written = [...(state.conversation?.questions ?? [])].map(
        (q) => settle(q, 'deny', 'withdrawn', null).written,
      );
      await Promise.all(written);
    },
  };
}
