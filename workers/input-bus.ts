/**
 * One LISTEN connection per host worker for terminal input: wakes the output pump of the task
 * whose input arrived. The rows themselves stay in PostgreSQL until delivered.
 */
import type pg from 'pg';
import { CHANNELS, listenClient } from '../common/db/pool.js';
import type { Logger } from '../common/logger.js';

export class InputBus {
  private readonly waiters = new Map<string, Set<() => void>>();

  private constructor(private readonly client: pg.Client) {
    client.on('notification', (n) => {
      if (n.channel !== CHANNELS.input || !n.payload) return;
      for (const wake of this.waiters.get(n.payload) ?? []) wake();
    });
  }

  static async start(url: string, logger: Logger): Promise<InputBus> {
    const client = await listenClient(url, [CHANNELS.input]);
    client.on('error', (err) => logger.error({ err: err.message }, 'input bus connection lost'));
    return new InputBus(client);
  }

  /** Calls `wake` whenever input for `taskId` is queued. Returns an unsubscribe function. */
  subscribe(taskId: string, wake: () => void): () => void {
    let set = this.waiters.get(taskId);
    if (!set) {
      set = new Set();
      this.waiters.set(taskId, set);
    }
    set.add(wake);
    return () => {
      set.delete(wake);
      if (!set.size) this.waiters.delete(taskId);
    };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
