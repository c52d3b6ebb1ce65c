/**
 * One LISTEN connection per process: fans out "task X has output up to seq N", "task X changed"
 * and "task X has input queued" to whoever watches X (streams, the bot's threads, output pumps). Reconnects when PostgreSQL drops it, and then
 * wakes every watcher, because notifies sent while it was away are lost (the watchers re-read
 * from their own cursors, so a spurious wake-up costs a query, never a byte).
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { CHANNELS, listenClient } from './pool.js';

type Listener = { output?(seq: number): void; task?(): void; input?(): void };

export class TaskBus {
  private readonly watchers = new Map<string, Set<Listener>>();
  private client?: pg.Client;
  private closed = false;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly channels: string[],
  ) {}

  /** Listens on `channels` (default: output and task changes). */
  static async start(
    url: string,
    logger: Logger,
    channels: string[] = [CHANNELS.output, CHANNELS.task],
  ): Promise<TaskBus> {
    const bus = new TaskBus(url, logger, channels);
    await bus.connect();
    return bus;
  }

  private async connect(): Promise<void> {
    const client = await listenClient(this.url, this.channels);
    this.client = client;
    client.on('notification', (n) => {
      if (!n.payload) return;
      if (n.channel === CHANNELS.output) {
        const i = n.payload.lastIndexOf(':');
        const seq = Number(n.payload.slice(i + 1));
        for (const l of this.watchers.get(n.payload.slice(0, i)) ?? []) l.output?.(seq);
      } else if (n.channel === CHANNELS.input) {
        for (const l of this.watchers.get(n.payload) ?? []) l.input?.();
      } else {
        for (const l of this.watchers.get(n.payload) ?? []) l.task?.();
      }
    });
    client.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'task bus: LISTEN connection lost; reconnecting');
      void this.reconnect();
    });
  }

  private async reconnect(): Promise<void> {
    this.client?.end().catch(() => {});
    this.client = undefined;
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.connect();
        for (const set of this.watchers.values()) {
          for (const l of set) {
            l.output?.(Number.MAX_SAFE_INTEGER);
            l.task?.();
            l.input?.();
          }
        }
        return;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  watch(taskId: string, l: Listener): () => void {
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
    await this.client?.end().catch(() => {});
  }
}
