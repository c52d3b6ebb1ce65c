/**
 * Follows a task's output live, from a seq: every chunk once and in order, woken by the bus's
 * NOTIFY and re-reading from its own cursor (so a lost or doubled notification loses and doubles
 * nothing). The consumer's `deliver` may take its time: the follower reads no further until it
 * returns (backpressure).
 */
import { coalesced } from '../common/rerun.js';
import type { TaskBus } from './bus.js';
import type { Chunk, OutputLog } from './log.js';

export interface FollowOptions {
  /** The first seq wanted (1 = from the start). */
  from: number;
  /** Gets each batch in order; the next read waits until it resolves. */
  deliver(chunks: Chunk[]): Promise<void> | void;
  /** Output before `firstAvailableSeq` was dropped by the retention cap. */
  truncated?(firstAvailableSeq: number): void;
  /** Called once before the first delivery, with the seq it starts at (a protocol's greeting). */
  ready?(fromSeq: number): Promise<void> | void;
  /** The task's row changed (status, usage…), for consumers that show it. */
  taskChanged?(): void;
  onError?(err: unknown): void;
  batch?: number;
}

export class OutputFollower {
  /** The last seq delivered. */
  cursor: number;
  private closed = false;
  private readonly unwatch: () => void;
  private readonly drain: () => Promise<void>;

  private constructor(
    private readonly log: OutputLog,
    bus: TaskBus,
    readonly taskId: string,
    private readonly o: FollowOptions,
  ) {
    this.cursor = Math.max(1, o.from) - 1;
    this.drain = coalesced(() => this.readAll());
    this.unwatch = bus.watch(taskId, {
      output: (seq) => {
        if (seq > this.cursor) void this.wake();
      },
      task: () => o.taskChanged?.(),
    });
  }

  /** Starts following; resolves once what is stored now has been delivered. */
  static async start(
    log: OutputLog,
    bus: TaskBus,
    taskId: string,
    o: FollowOptions,
  ): Promise<OutputFollower> {
    const f = new OutputFollower(log, bus, taskId, o);
    try {
      const first = await log.firstSeq(taskId);
      if (first !== undefined && f.cursor + 1 < first) {
        f.cursor = first - 1;
        o.truncated?.(first);
      }
      await o.ready?.(f.cursor + 1);
    } catch (err) {
      f.close();
      throw err;
    }
    await f.wake();
    return f;
  }

  private wake(): Promise<void> {
    return this.drain().catch((err) => this.o.onError?.(err));
  }

  private async readAll(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const batch = await this.log.read(this.taskId, this.cursor, this.o.batch ?? 256);
      if (!batch.length || this.closed) return;
      await this.o.deliver(batch);
      this.cursor = batch[batch.length - 1]!.seq;
    }
  }

  close(): void {
    this.closed = true;
    this.unwatch();
  }
}
