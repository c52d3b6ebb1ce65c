/**
 * Activity contracts. Workflows import these types only; implementations live in activities/.
 */
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
}

/** Run by the control worker (queue `lia-control`). */
export interface ControlActivities {
  /** Picks a live host with room; throws a non-retryable `NoCapacity` failure when none has. */
  placeTask(args: { taskId: string; owner: string; limits: TaskLimits }): Promise<Placement>;
  /** Updates the task's row in PostgreSQL (the API and bot read lists from it). */
  recordTask(args: { taskId: string; patch: TaskRecordPatch }): Promise<void>;
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
  pumpOutput(args: { taskId: string; runtime: Runtime; reportMs: number }): Promise<AgentExit>;
  /** Pauses the VM and writes its state; afterwards it holds no CPU or RAM. */
  suspendVm(args: { taskId: string }): Promise<{ snapshotBytes: number; ms: number }>;
  /** Brings a suspended VM back from its snapshot and waits for the sidecar. */
  restoreVm(args: { taskId: string }): Promise<{ ms: number }>;
  /** Destroys the VM and deletes its disk, snapshot and sockets. Idempotent, safe in any state. */
  destroyVm(args: { taskId: string }): Promise<void>;
}
