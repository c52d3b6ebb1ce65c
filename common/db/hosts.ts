import { CHANNELS } from './channels.js';
import { inTransaction, type Pool } from './pool.js';

export interface HostInfo {
  id: string;
  taskQueue: string;
  driver: string;
  acceleration: string;
  maxVms: number;
  vcpus: number;
  memoryMib: number;
}

export async function heartbeatHost(pool: Pool, h: HostInfo): Promise<void> {
  await pool.query(
    `INSERT INTO hosts (id, task_queue, driver, acceleration, max_vms, vcpus, memory_mib)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET task_queue = $2, driver = $3, acceleration = $4, max_vms = $5,
       vcpus = $6, memory_mib = $7, heartbeat_at = now()`,
    [h.id, h.taskQueue, h.driver, h.acceleration, h.maxVms, h.vcpus, h.memoryMib],
  );
}

export class NoCapacity extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoCapacity';
  }
}

/**
 * Places a task on the live host with the most free VM slots and records the choice on the
 * task's row, under a lock so two placements can't both take a host's last slot. A VM counts
 * against its host until the task ends (a suspended VM still holds its disk and snapshot).
 */
export async function placeOnHost(pool: Pool, taskId: string, staleAfterSeconds: number): Promise<HostInfo> {
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('lia:placement'))`);
    const { rows } = await client.query<HostInfo & { used: number }>(
      `SELECT h.id, h.task_queue AS "taskQueue", h.driver, h.acceleration, h.max_vms AS "maxVms", h.vcpus,
              h.memory_mib AS "memoryMib",
              (SELECT count(*)::int FROM tasks t WHERE t.host_id = h.id AND t.id <> $1
                 AND t.status IN ('starting', 'running', 'suspended')) AS used
       FROM hosts h WHERE h.heartbeat_at > now() - make_interval(secs => $2)
       ORDER BY h.max_vms - (SELECT count(*) FROM tasks t WHERE t.host_id = h.id
                 AND t.status IN ('starting', 'running', 'suspended')) DESC, h.id`,
      [taskId, staleAfterSeconds],
    );
    const host = rows.find((h) => h.used < h.maxVms);
    if (!host) {
      throw new NoCapacity(
        rows.length
          ? `every live host is full (${rows.map((h) => `${h.id}: ${h.used}/${h.maxVms} VMs`).join(', ')})`
          : 'no host worker is running (none has sent a heartbeat recently)',
      );
    }
    // The task is starting from here on; watchers hear of it when this commits.
    await client.query(
      `WITH u AS (UPDATE tasks SET host_id = $2, status = 'starting', updated_at = now() WHERE id = $1 RETURNING id)
       SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
      [taskId, host.id],
    );
    const { used: _used, ...info } = host;
    return info;
  });
}
