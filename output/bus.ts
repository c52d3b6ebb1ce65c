/**
 * One LISTEN connection per process: fans out "task X has output up to seq N", "task X changed"
 * and "task X has input queued" to whoever watches X (streams, the bot's threads, output pumps).
 * Reconnects when PostgreSQL drops it, and then wakes every watcher, because notifies sent while
 * it was away are lost (the watchers re-read from their own cursors, so a spurious wake-up costs
 * a query, never a byte).
 */
import type pg from 'pg';
import { CHANNELS, type Channel, parseNotification } from '../common/db/channels.js';
import { listenClient } from '../common/db/pool.js';
import type { Logger } from '../common/logger.js';

export type TaskListener = { output?(seq: number): void; task?(): void; input?(): void; diff?(): void };

export class TaskBus {
  private readonly watchers = new Map<string, Set<TaskListener>>();
  private client?: pg.Client;
  private closed = false;
  /** How many times the LISTEN connection was re-established (for tests and logs). */
  reconnects = 0;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly channels: Channel[],
  ) {}

  /** Listens on `channels` (default: output and task changes). */
  static async start(
    url: string,
    logger: Logger,
    channels: Channel[] = [CHANNELS.output, CHANNELS.task],
  ): Promise<TaskBus> {
    const bus = new TaskBus(url, logger, channels);
    await bus.connect();
    return bus;
  }

  private async connect(): Promise<void> {
    const client = await listenClient(this.url, this.channels);
    this.client = client;
    client.on('notification', (n) => {
      const m = parseNotification(n.channel, n.payload);
      if (!m) return;
      for (const l of this.watchers.get(m.taskId) ?? []) {
        if (m.channel === CHANNELS.output) l.output?.(m.seq);
        else if (m.channel === CHANNELS.input) l.input?.();
        else if (m.channel === CHANNELS.diff) l.diff?.();
        else l.task?.();
      }
    });
    client.on('error', (err) => {
      if (this.client !== client) return;
      this.logger.warn({ err: err.message }, 'task bus: LISTEN connection lost; reconnecting');
      void this.reconnect();
    });
    client.on('end', () => {
      if (this.client === client && !this.closed) void this.reconnect();
    });
  }

  private async reconnect(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    old?.end().catch(() => {});
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.connect();
        this.reconnects++;
        for (const set of this.watchers.values()) {
          for (const l of set) {
            l.output?.(Number.MAX_SAFE_INTEGER);
            l.task?.();
            l.input?.();
            l.diff?.();
          }
        }
        return;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  watch(taskId: string, l: TaskListener): () => void {
    let set = this.watchers.get(taskId);
    if (!set) {
      set = new Set();
      this.watchers.set(taskId, set);
    }
    set.add(l);
    return () => {
      set.delete(l);
      if (!set.size) this.watchers.delete(taskId);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
