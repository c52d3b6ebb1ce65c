/**
 * The control role's gauges, read from PostgreSQL when scraped: tasks by status and host, the
 * queue's length and its oldest wait, and each host's slots (used, free) with its state. One
 * control process is enough to serve them; every one does, and they agree.
 */
import { Gauge } from 'prom-client';
import type { Pool } from '../common/db/pool.js';
import { registry } from '../common/metrics.js';

export function registerControlGauges(pool: Pool): void {
  new Gauge({
    name: 'lia_tasks',
    help: 'Tasks by status and host (ended ones: the last day)',
    labelNames: ['status', 'host'],
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ status: string; host: string | null; n: number }>(
        `SELECT status, host_id AS host, count(*)::int AS n FROM tasks
         WHERE status NOT IN ('terminated', 'failed') OR updated_at > now() - interval '1 day'
         GROUP BY status, host_id`,
      );
      this.reset();
      for (const r of rows) this.set({ status: r.status, host: r.host ?? '' }, r.n);
    },
  });
  new Gauge({
    name: 'lia_queue_length',
    help: 'Tasks waiting in the queue for a host with room',
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE status = 'pending' AND queued_at IS NOT NULL`,
      );
      this.set(rows[0]?.n ?? 0);
    },
  });
  new Gauge({
    name: 'lia_queue_oldest_wait_seconds',
    help: 'How long the task at the head of the queue has waited',
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ s: number | null }>(
        `SELECT extract(epoch FROM now() - min(queued_at))::float8 AS s FROM tasks
         WHERE status = 'pending' AND queued_at IS NOT NULL`,
      );
      this.set(rows[0]?.s ?? 0);
    },
  });
  new Gauge({
    name: 'lia_host_slots',
    help: "Each host's VM slots, used and free, with the host's state",
    labelNames: ['host', 'state', 'slots'],
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ id: string; state: string; max: number; used: number }>(
        `SELECT h.id, h.state, h.max_vms AS max,
                (SELECT count(*)::int FROM tasks t WHERE t.host_id = h.id
                   AND t.status NOT IN ('pending', 'terminated', 'failed')) AS used
         FROM hosts h`,
      );
      this.reset();
      for (const r of rows) {
        this.set({ host: r.id, state: r.state, slots: 'used' }, r.used);
        this.set({ host: r.id, state: r.state, slots: 'free' }, Math.max(0, r.max - r.used));
      }
    },
  });
}
