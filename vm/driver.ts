/**
 * The one interface every VMM driver implements. A driver keeps all it needs on disk under its
 * host's state folder, so a restarted worker (a new driver object) finds its VMs again.
 */
import type { Duplex } from 'node:stream';

export type DriverName = 'firecracker' | 'qemu' | 'local';

export interface VmSpec {
  taskId: string;
  vcpus: number;
  memoryMib: number;
  storageGb: number;
}

export type Progress = (message: string) => void;

/** How a VM was started: restored from a template, or booted cold (and why, if a template failed). */
export interface BootInfo {
  from: 'template' | 'cold';
  /** The template's key. */
  template?: string;
  /** Why a cold boot, when a template should have been used. */
  reason?: string;
  /** A spare VM, restored from the template ahead of demand. */
  pooled?: boolean;
}

export interface VmDriver {
  readonly name: DriverName;
  /** 'kvm', 'tcg' (software emulation) or 'none' (local: no VM at all). */
  readonly acceleration: string;
  /** Environment the agent needs in this kind of VM (where the egress proxy is). */
  readonly guestEnv?: Record<string, string>;
  /**
   * Creates the VM (copy-on-write disk, VMM process, sidecar) and resolves once the sidecar
   * accepts connections. Idempotent: a VM that is already up is left as it is. Stops between
   * steps (and in long waits) once `signal` is aborted; what it made is left for destroy().
   */
  boot(spec: VmSpec, progress: Progress, signal?: AbortSignal): Promise<BootInfo | void>;
  /** A fresh byte stream to the task's sidecar (one at a time per task). */
  connect(taskId: string): Promise<Duplex>;
  /** Pauses the VM, writes its state, stops the VMM. Returns the snapshot's size on disk. */
  suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }>;
  /**
   * Restores a suspended VM and resolves once the sidecar accepts connections again. The
   * snapshot is kept until then: a failed or interrupted restore can be tried again (and never
   * leaves a second VMM beside the first).
   */
  restore(taskId: string, progress: Progress, signal?: AbortSignal): Promise<void>;
  /** Kills the VMM and every process of the task, deletes disk, snapshot, sockets. Idempotent. */
  destroy(taskId: string): Promise<void>;
  /** Task ids that have anything (process, disk, snapshot) on this host: for reconciliation. */
  list(): Promise<string[]>;
  /** VMM (or sidecar) processes of this driver whose task folder is gone: for reconciliation. */
  strays?(): Promise<number[]>;
}

export class VmError extends Error {
  constructor(
    message: string,
    /** False when retrying cannot help (missing binary, bad image): the task fails visibly. */
    readonly retryable = true,
  ) {
    super(message);
    this.name = 'VmError';
  }
}
