/**
 * One LISTEN connection per API process: fans out "task X has output up to seq N" and
 * "task X changed" to every stream watching X. Reconnects when PostgreSQL drops it, and then
 * wakes every watcher, because notifies sent while it was away are lost (the watchers re-read
 * from their own cursors, so a spurious wake-up costs a query, never a byte).
 */
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { CHANNELS, listenClient } from './pool.js';

type Listener = { output(seq: number): void; task(): void };

export class OutputBus {
  private readonly watchers = new Map<string, Set<Listener>>();
  private client?: pg.Client;
  private closed = false;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  static async start(url: string, logger: Logger): Promise<OutputBus> {
    const bus = new OutputBus(url, logger);
    await bus.connect();
    return bus;
  }

  private async connect(): Promise<void> {
    const client = await listenClient(this.url, [CHANNELS.output, CHANNELS.task]);
    this.client = client;
    client.on('notification', (n) => {
      if (!n.payload) return;
      if (n.channel === CHANNELS.output) {
        const i = n.payload.lastIndexOf(':');
        const seq = Number(n.payload.slice(i + 1));
        for (const l of this.watchers.get(n.payload.slice(0, i)) ?? []) l.output(seq);
      } else {
        for (const l of this.watchers.get(n.payload) ?? []) l.task();
      }
    });
    client.on('error', (err) => {
      this.logger.warn({ err: err.message }, 'output bus: LISTEN connection lost; reconnecting');
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
            l.output(Number.MAX_SAFE_INTEGER);
            l.task();
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
