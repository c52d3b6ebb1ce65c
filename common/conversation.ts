/**
 * The agent as a conversation: permission modes, the questions an agent asks before it uses a
 * tool, the owner's answers, and follow-up turns. One definition for the guest's hook, the host's
 * pump, the workflow, the task service, the API, the bot and the web page. Pure (zod only), so
 * the workflow imports it too.
 */
import { z } from 'zod';
import { PERMISSION_MODES, type PermissionMode } from './permission-policy.js';

export {
  EDIT_TOOLS,
  needsAnswer,
  PERMISSION_MODE_HELP,
  PERMISSION_MODES,
  type PermissionMode,
  READ_ONLY_TOOLS,
} from './permission-policy.js';

export const permissionModeSchema = z.enum(PERMISSION_MODES);

/** The owner's three buttons. */
export const CHOICES = ['once', 'always', 'deny'] as const;
export type Choice = (typeof CHOICES)[number];
export const choiceSchema = z.enum(CHOICES);

export const CHOICE_LABELS: Record<Choice, string> = {
  once: 'Allow once',
  always: 'Always allow this tool in this task',
  deny: 'Deny',
};

/**
 * How a question was settled: the owner (or an admin) chose `once`, `always` or `deny`; `rule`:
 * the tool was always allowed earlier in the task; `timeout`: nobody answered in time;
 * `limit`: too many questions were waiting; `withdrawn`: the agent stopped waiting (it was
 * interrupted) before anyone answered.
 */
export const DECISION_HOWS = ['once', 'always', 'deny', 'rule', 'timeout', 'limit', 'withdrawn'] as const;
export type DecisionHow = (typeof DECISION_HOWS)[number];

export const QUESTION_ID_RE = /^q_[a-z0-9]{8,32}$/;
export const questionIdSchema = z
  .string()
  .regex(QUESTION_ID_RE, 'a question id looks like q_ followed by 8 to 32 letters or digits');

/** Tool names as Claude Code writes them (`Bash`, `mcp__server__tool`). */
export const TOOL_NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

export const CONVERSATION_LIMITS = {
  /** Questions waiting at once in a task; more are denied at once (`limit`). */
  pendingQuestions: 16,
  /** Tools a task may have on its always-allow list. */
  allowedTools: 32,
  /** What a question shows of its tool use (the host trims the guest's input to these). */
  summaryChars: 1000,
  detailChars: 1500,
  /** A tool input the guest sends with a question, serialized. */
  toolInputBytes: 256 * 1024,
  /** Follow-up turns waiting for the agent (queued or in its VM) before more are refused. */
  waitingTurns: 20,
  /** Decisions the workflow keeps in its state (all of them are in PostgreSQL). */
  decisionsInState: 20,
  /** Question ids the workflow remembers as settled, to ignore a guest sending one again. */
  settledIdsInState: 64,
} as const;

/** A question as the workflow holds it and every reader shows it. */
export interface QuestionView {
  id: string;
  tool: string;
  /** The command, the file, the URL: one line (or a few) that says what the tool will do. */
  summary: string;
  /** More of it: a diff preview, a description; may be empty. */
  detail: string;
  /** Epoch ms. */
  askedAt: number;
  /** Epoch ms at which it is denied if nobody answers. */
  deadline: number;
}

/** A settled question: who decided what, when. */
export interface DecisionView {
  questionId: string;
  tool: string;
  summary: string;
  decision: 'allow' | 'deny';
  how: DecisionHow;
  /** The user who answered; null when the task decided by itself (rule, timeout, limit, withdrawn). */
  by: string | null;
  /** Epoch ms. */
  at: number;
}

/** The pump → workflow signal: a question the guest's hook asked (bounded by the pump). */
export interface AskedQuestion {
  id: string;
  tool: string;
  summary: string;
  detail: string;
}

/** The workflow's conversation state, carried across continue-as-new. */
export interface ConversationState {
  questions: QuestionView[];
  /** Recent decisions, newest last (at most CONVERSATION_LIMITS.decisionsInState). */
  decisions: DecisionView[];
  /** Ids settled recently: a question the guest sends again after a reconnect is not asked twice. */
  settled: string[];
  /** Tools the owner always allowed in this task. */
  allowedTools: string[];
}

export const TURN_STATUSES = ['queued', 'delivered', 'running', 'done'] as const;
export type TurnStatus = (typeof TURN_STATUSES)[number];

/** A turn of a headless task's conversation: the first is the prompt, then each follow-up. */
export interface TurnView {
  n: number;
  /** The owner's message (the first turn: the task's prompt). */
  text: string;
  author: string;
  /** queued: in PostgreSQL; delivered: in the VM, waiting for the turn before it; running; done. */
  status: TurnStatus;
  createdAt: string;
  result: { text: string; isError: boolean; numTurns: number } | null;
}

/** GET /api/v1/tasks/{id}/conversation */
export interface ConversationView {
  taskId: string;
  permissionMode: PermissionMode | null;
  /** Whether follow-ups become turns of the same Claude Code session (headless), not keystrokes. */
  turnsEnabled: boolean;
  questions: QuestionView[];
  /** Newest first, at most 100. */
  decisions: DecisionView[];
  allowedTools: string[];
  /** Newest last, at most 50. */
  turns: TurnView[];
}

/** The follow-up message bodies the API and the bot take. */
export const turnTextSchema = z
  .string()
  .max(100_000, 'a message must be at most 100,000 characters')
  .refine((s) => s.trim().length > 0, 'the message must not be empty');

/**
 * A Discord button's custom id for a question: `lia:q:<task>:<question>:<choice>`, at most 100
 * characters (Discord's limit), parsed back strictly (a press carries whatever id it was given).
 */
export const QUESTION_BUTTON_PREFIX = 'lia:q:';
const BUTTON_RE = /^lia:q:(t_[a-z2-7]{10}):(q_[a-z0-9]{8,32}):(once|always|deny)$/;

export function questionButtonId(taskId: string, questionId: string, choice: Choice): string {
  return `${QUESTION_BUTTON_PREFIX}${taskId}:${questionId}:${choice}`;
}

export function parseQuestionButton(
  customId: string,
): { taskId: string; questionId: string; choice: Choice } | undefined {
  const m = BUTTON_RE.exec(customId);
  return m ? { taskId: m[1]!, questionId: m[2]!, choice: m[3] as Choice } : undefined;
}

/** "Allowed once by <@u>", "Denied: nobody answered within 24 h", … (plain text; the bot adds mentions). */
export function describeDecision(d: Pick<DecisionView, 'decision' | 'how' | 'by'>, who = d.by ?? ''): string {
  switch (d.how) {
    case 'once':
      return `Allowed once by ${who}`;
    case 'always':
      return `Allowed by ${who}, and always from now on in this task`;
    case 'deny':
      return `Denied by ${who}`;
    case 'rule':
      return 'Allowed: always allowed in this task';
    case 'timeout':
      return 'Denied: nobody answered in time';
    case 'limit':
      return 'Denied: too many questions were waiting';
    case 'withdrawn':
      return 'Withdrawn: the agent stopped waiting for an answer';
  }
}
