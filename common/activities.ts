/**
 * Activity contracts. Workflows import these types only; implementations live in activities/.
 */

import type { DecisionView, QuestionView } from './conversation.js';
import type { DiffStat } from './diff.js';
import type { Runtime, TaskLimits, TaskStatus } from './task.js';

/** Where a task runs: its VM activities go to that host's queue (`hostQueue(hostId)`). */
export interface Placement {
  hostId: string;
}

export interface TaskRecordPatch {
  status?: TaskStatus;
  hostId?: string | null;
  driver?: string;
  acceleration?: string;
  error?: string | null;
  exitCode?: number | null;
  /** Epoch ms at which the idle timer suspends the task (null when it is not running). */
  idleDeadline?: number | null;
}

/** Run by the control worker (queue `lia-control`). */
export interface ControlActivities {
  /** The first workflow's placement: a live host with room, or a non-retryable `NoCapacity`. */
  placeTask(args: { taskId: string; owner: string; limits: TaskLimits }): Promise<Placement>;
  /**
   * Places the task on the active host with the most room, or puts it in the queue (first come,
   * first served) and says where; `NoCapacity` only for a VM no host could ever hold.
   */
  placeOrQueue(args: {
    taskId: string;
    owner: string;
    limits: TaskLimits;
  }): Promise<Placement | { waiting: { position: number; why: string } }>;
  /** Updates the task's row in PostgreSQL (the API and bot read lists from it). */
  recordTask(args: { taskId: string; patch: TaskRecordPatch }): Promise<void>;
  /**
   * Milliseconds left before the idle deadline the host's pump last recorded (null: none).
   * Asked when the workflow's idle timer fires, before it suspends.
   */
  idleLeft(args: { taskId: string }): Promise<number | null>;
  /** Writes a question the agent asked (again: nothing); the bot and the web page are told. */
  recordQuestion(args: { taskId: string; question: QuestionView }): Promise<void>;
  /**
   * Writes how a question was settled and what the agent is told; the host's pump delivers it
   * (at once, or when the VM is back), the bot and the web page are told.
   */
  recordDecision(args: {
    taskId: string;
    question: QuestionView;
    decision: DecisionView;
    message: string;
  }): Promise<void>;
}

/** What one pass of the host watchdog did. */
export interface WatchReport {
  /** Hosts declared lost in this pass. */
  lost: string[];
  /** Task workflows told that their host is lost. */
  told: string[];
}

/** What one pass of the task sweeper did. */
export interface SweepReport {
  /** Rows closed because their workflow is closed or missing, with the reason. */
  closed: { taskId: string; status: TaskStatus; reason: string }[];
  /** Output chunks of ended tasks deleted past their retention. */
  outputChunksDropped?: number;
}

/** Run by the control worker for the maintenance workflows that Temporal Schedules start. */
export interface MaintenanceActivities {
  /** Declares lost the hosts whose heartbeat is stale past the grace period and whose queue nobody polls. */
  watchHosts(): Promise<WatchReport>;
  /** Closes task rows whose workflow is closed or missing (a Temporal terminate, a crash at creation). */
  sweepTasks(): Promise<SweepReport>;
}

export interface BootResult {
  driver: string;
  acceleration: string;
  bootMs: number;
}

export interface AgentExit {
  exitCode: number | null;
  signal: string | null;
  /** A human-readable reason when the agent could not run (e.g. no API key). */
  message?: string;
}

/** A task's pull request, as the host activity opened or updated it (issue 20). */
export interface PullRequestResult {
  number: number;
  url: string;
  /** False: one was open for the branch already, and was updated. */
  created: boolean;
  branch: string;
  /** What the guest's git said (its tail). */
  pushOutput: string;
  /** What the pull request holds (the branch against its base), when the guest gave its diff. */
  stat?: DiffStat;
}

/** Run by the host worker that holds the VM (queue `lia-host-<id>`). */
export interface HostActivities {
  /** Creates the VM (disk, VMM, sidecar) and waits for the sidecar's hello. Idempotent. */
  bootVm(args: { taskId: string; limits: TaskLimits }): Promise<BootResult>;
  /** Hands the prompt and files to the sidecar, which starts the agent in a PTY. Idempotent. */
  startAgent(args: { taskId: string; runtime: Runtime }): Promise<void>;
  /**
   * Pumps PTY output into PostgreSQL and input back, until the agent exits (returns its exit)
   * or the activity is cancelled. Signals agent I/O to the workflow at most every `reportMs`.
   */
  pumpOutput(args: {
    taskId: string;
    runtime: Runtime;
    reportMs: number;
    idleTimeoutMs?: number;
  }): Promise<AgentExit>;
  /** Pauses the VM and writes its state; afterwards it holds no CPU or RAM. */
  suspendVm(args: { taskId: string }): Promise<{ snapshotBytes: number; ms: number; inputWaiting?: boolean }>;
  /** Brings a suspended VM back from its snapshot and waits for the sidecar. */
  restoreVm(args: { taskId: string }): Promise<{ ms: number }>;
  /** Destroys the VM and deletes its disk, snapshot and sockets. Idempotent, safe in any state. */
  destroyVm(args: { taskId: string }): Promise<void>;
  /**
   * Commits what is uncommitted in the guest's checkout, pushes the task's branch through the
   * proxy, and opens (or updates) the task's pull request with the host's credential.
   */
  openPullRequest(args: {
    taskId: string;
    /** The end of a headless turn (`turn`), or the owner; default: asked. */
    trigger?: 'asked' | 'turn';
    turn?: number;
  }): Promise<PullRequestResult>;
}
