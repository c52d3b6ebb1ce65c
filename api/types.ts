/**
 * The API's shapes on the wire, for its clients: the web page imports these (types only), so a
 * field added on the server is seen by the page's compiler, not re-declared by hand.
 */
import type { PullRequestResult } from '../common/activities.js';
import type { DecisionView, TurnStatus } from '../common/conversation.js';
import type { TaskView } from '../common/task-view.js';

export type { PullRequestResult } from '../common/activities.js';
export type {
  Choice,
  ConversationView,
  DecisionView,
  PermissionMode,
  QuestionView,
  TurnView,
} from '../common/conversation.js';
export type { DiffFile, DiffStat, DiffView } from '../common/diff.js';
export type { TaskStatus } from '../common/task.js';
export type { TaskView } from '../common/task-view.js';

/** POST /api/v1/tasks/{id}/questions/{qid}: how the question is settled now. */
export interface AnswerResponse {
  taskId: string;
  decision: DecisionView;
}

/**
 * POST /api/v1/tasks/{id}/turns (202): in a headless conversation the message is turn `n`, with
 * `ahead` turns before it not yet done (`pullRequestAfter`: it asked for the pull request, opened
 * when it ends); elsewhere it was typed into the terminal (`typed`). A message that only asks for
 * the pull request ("open a PR") opens it (`pull-request`), and the agent is not asked.
 */
export type FollowUpResponse = { taskId: string } & (
  | { kind: 'turn'; n: number; ahead: number; status: TaskView['status']; pullRequestAfter?: boolean }
  | { kind: 'typed'; status: TaskView['status'] }
  | { kind: 'pull-request'; pullRequest: PullRequestResult }
);
export type { TurnStatus };

/** GET /api/v1/tasks: the caller's tasks (a task link: its own task only). No links. */
export interface TaskListResponse {
  tasks: TaskView[];
}

/** GET /api/v1/tasks/{id}?link=true (services): the task with a new link, which revokes the older ones. */
export type TaskWithLink = TaskView & { url: string };

/** Every error: `{ "error": { "code", "message" } }`. */
export interface ErrorResponse {
  error: { code: string; message: string };
}

/** GET /api/v1/tasks/{id}/output (format=json). */
export interface OutputResponse {
  taskId: string;
  fromSeq: number;
  nextSeq: number;
  firstAvailableSeq: number;
  truncated: boolean;
  /** More output follows this page: ask again from `nextSeq`. */
  more: boolean;
  text: string;
}

/** The stream's JSON text frames, server → client (output comes as binary frames). */
export type StreamServerMessage =
  | { type: 'hello'; taskId: string; fromSeq: number }
  | {
      type: 'state';
      status: TaskView['status'];
      idleDeadline: number | null;
      error: string | null;
      exitCode: number | null;
      driver: string | null;
      acceleration: string | null;
      queue: TaskView['queue'] | null;
      /** Moves when the questions, decisions or turns change (read /conversation again). */
      conversationAt: number | null;
      openQuestions: number;
    }
  | { type: 'truncated'; firstAvailableSeq: number; message: string }
  | { type: 'ack'; seq: number }
  | { type: 'error'; message: string }
  | { type: 'pong' };
