/**
 * The task's shared vocabulary: ids, states, the workflow's input and the state it reports.
 * Imported by workflows (types and pure helpers only), the API, the bot and the activities.
 */
import { z } from 'zod';
import type { ConversationState } from './conversation.js';
import type { PermissionMode } from './permission-policy.js';
import { TASK_ID_RE } from './task-id.js';

/**
 * pending → starting → running ⇄ (suspending → suspended → resuming) ; cleanup: terminating →
 * terminated, failing → failed. The -ing states are transitions an operator can see in the
 * Temporal UI (`LiaStatus`) and a user in the task's view.
 */
export const TASK_STATUSES = [
  'pending',
  'starting',
  'running',
  'suspending',
  'suspended',
  'resuming',
  'terminating',
  'failing',
  'terminated',
  'failed',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const ENDED_STATUSES: readonly TaskStatus[] = ['terminated', 'failed'];
export const isEnded = (s: TaskStatus): boolean => ENDED_STATUSES.includes(s);
/** Cleaning up on its way to an end state. */
export const isEnding = (s: TaskStatus): boolean => s === 'terminating' || s === 'failing';
/** Statuses whose VM holds (or is about to hold) CPU and memory: what the running quota counts. */
export const RUNNING_STATUSES: readonly TaskStatus[] = ['pending', 'starting', 'running', 'resuming'];

/** `claude`: interactive Claude Code in the terminal; `claude-headless`: one `claude -p` run, then a shell. */
export const RUNTIMES = ['shell', 'claude', 'claude-headless'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export { TASK_ID_RE } from './task-id.js';
export const taskIdSchema = z
  .string()
  .regex(TASK_ID_RE, 'a task id looks like t_ followed by 10 characters from a-z and 2-7, e.g. t_abcdefg234');

export const LIMITS = {
  promptMaxChars: 100_000,
  filesMax: 10,
  fileMaxBytes: 10 * 1024 * 1024,
  filesTotalMaxBytes: 25 * 1024 * 1024,
  idleTimeoutSeconds: { min: 1, max: 30 * 24 * 3600 },
  terminal: { minCols: 2, maxCols: 1000, minRows: 1, maxRows: 500 },
  inputMaxBytes: 64 * 1024,
  /** Input waiting for a task's VM (one that does not read it) before more is refused. */
  taskInputMaxBytes: 64 * 1024 * 1024,
} as const;

/** Safe file names: no path separators, no leading dot, printable, at most 128 characters. */
export const fileNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9._ -]*$/,
    'file names may use letters, digits, ".", "_", "-" and spaces, and must not start with "." or "-"',
  );

export const promptSchema = z
  .string()
  .max(LIMITS.promptMaxChars, `the prompt must be at most ${LIMITS.promptMaxChars} characters`)
  .refine((s) => s.trim().length > 0, 'the prompt must not be empty');

/**
 * Model tokens of a task, as the host's egress proxy counted them. `inputTokens` is the uncached
 * input only, as the API reports it: the whole input is that plus cache reads plus cache writes.
 */
export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

/** All the input a model saw: uncached, read from the cache, and written to it. */
export function totalInputTokens(t: TokenCounts): number {
  return t.inputTokens + t.cacheReadTokens + t.cacheCreationTokens;
}

/** What the token budgets count: every token the model API reported, input of each kind and output. */
export function budgetTokens(t: TokenCounts): number {
  return totalInputTokens(t) + t.outputTokens;
}

/** What a task's record and its view share. */
export interface TaskFields {
  id: string;
  owner: string;
  runtime: Runtime;
  status: TaskStatus;
  promptFirstLine: string;
  hostId: string | null;
  driver: string | null;
  acceleration: string | null;
  error: string | null;
  exitCode: number | null;
  /** Claude Code's permission mode (null: a shell, or a task from before permission modes). */
  permissionMode: PermissionMode | null;
}

export interface TaskLimits {
  idleTimeoutMs: number;
  /** The task ends this long after it was created (absent: no cap, as in runs started before it). */
  lifetimeMs?: number;
  /** A task suspended this long ends. */
  maxSuspendedMs?: number;
  vcpus: number;
  memoryMib: number;
  storageGb: number;
}

/** The workflow's input. Files travel through PostgreSQL (`task_files`), never through history. */
export interface TaskInput {
  taskId: string;
  owner: string;
  runtime: Runtime;
  /** The first line only, for the memo; the whole prompt is in `task_files` as `PROMPT.md`. */
  promptFirstLine: string;
  limits: TaskLimits;
  /** How often the host may report agent I/O to the workflow (idle timer resets). */
  activityReportMs: number;
  /** Continue-as-new after this many history events even if Temporal has not suggested it yet. */
  maxHistoryEvents?: number;
  /** How long the task may wait in the queue for a host with room (absent: not at all). */
  maxQueueWaitMs?: number;
  /** A question nobody answers is denied after this long (absent: a day, as tasks before it had none). */
  questionTimeoutMs?: number;
}

export interface TaskState {
  taskId: string;
  owner: string;
  runtime: Runtime;
  status: TaskStatus;
  hostId?: string;
  driver?: string;
  acceleration?: string;
  /** Epoch ms of the last reported agent I/O (or of the last state change). */
  lastActivityAt: number;
  /** Epoch ms when the idle timer will suspend the task, while running. */
  idleDeadline?: number;
  suspendCount: number;
  /** Epoch ms it was last suspended (for the maximum suspended age). */
  suspendedAt?: number;
  error?: string;
  exitCode?: number;
  createdAt: number;
  updatedAt: number;
  /** Questions waiting, recent decisions, the always-allowed tools (absent until the first question). */
  conversation?: ConversationState;
  /** The last headless turn whose end opened (or tried) the pull request. */
  pullRequestTurn?: number;
}

/**
 * Carried across continue-as-new. Versioned: a run started from an older shape (no `v`: the
 * first workflow's) reads it as that version.
 */
export interface CarriedState {
  v?: 2;
  state: TaskState;
}

/** Search attributes on every task workflow (registered with the Temporal server by temporal-dev/). */
export const SEARCH_ATTRIBUTES = {
  owner: 'LiaOwner',
  status: 'LiaStatus',
  host: 'LiaHost',
} as const;

export function firstLine(text: string, max = 120): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** How often the host reports agent I/O to the workflow: often enough for the idle timer, rarely enough for history. */
export function activityReportInterval(idleTimeoutMs: number): number {
  // Each report is a signal: four history events. A tenth of the idle timeout, at most once a
  // minute, keeps a busy task near 240 events an hour and suspends at most 10% late.
  return Math.min(60_000, Math.max(200, Math.floor(idleTimeoutMs / 10)));
}

/** What a headless Claude Code run reports at its end (from the guest: checked, never trusted for billing). */
export const headlessSummarySchema = z.object({
  result: z.string().max(20_000),
  isError: z.boolean(),
  numTurns: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  /** Which turn of the conversation ended (absent: a run of the first version, one turn only). */
  turn: z.number().int().min(1).max(1_000_000).optional(),
});
export type HeadlessSummary = z.infer<typeof headlessSummarySchema>;

/** A turn of a headless conversation started (from the guest: checked). */
export const turnMarkerSchema = z.object({
  n: z.number().int().min(1).max(1_000_000),
  state: z.literal('running'),
});
