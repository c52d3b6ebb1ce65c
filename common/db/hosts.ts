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

export type HostState = 'active' | 'draining' | 'lost';

/**
 * The host worker's heartbeat: its record, fresh. A host that was declared lost and comes back
 * is active again (its old tasks have ended; its reconciler removes their VMs); a draining host
 * stays draining until an admin says otherwise.
 */
export async function heartbeatHost(pool: Pool, h: HostInfo): Promise<void> {
  await pool.query(
    `INSERT INTO hosts (id, task_queue, driver, acceleration, max_vms, vcpus, memory_mib)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET task_queue = $2, driver = $3, acceleration = $4, max_vms = $5,
       vcpus = $6, memory_mib = $7, heartbeat_at = now(),
       state = CASE hosts.state WHEN 'draining' THEN 'draining' ELSE 'active' END,
       state_reason = CASE hosts.state WHEN 'lost' THEN 'came back after it was declared lost'
                      ELSE hosts.state_reason END,
       state_changed_at = CASE hosts.state WHEN 'lost' THEN now() ELSE hosts.state_changed_at END`,
    [h.id, h.taskQueue, h.driver, h.acceleration, h.maxVms, h.vcpus, h.memoryMib],
  );
}

export interface HostRecord {
  id: string;
  state: HostState;
  stateReason: string | null;
  driver: string;
  acceleration: string;
  maxVms: number;
  used: number;
  heartbeatAt: Date;
}

export async function listHosts(pool: Pool): Promise<HostRecord[]> {
  const { rows } = await pool.query<HostRecord>(
    `SELECT h.id, h.state, h.state_reason AS "stateReason", h.driver, h.acceleration, h.max_vms AS "maxVms",
            h.heartbeat_at AS "heartbeatAt",
            (SELECT count(*)::int FROM tasks t WHERE t.host_id = h.id
               AND t.status NOT IN ('pending', 'terminated', 'failed')) AS used
     FROM hosts h ORDER BY h.id`,
  );
  return rows;
}

/** An admin's drain (no new placements; its tasks go on) or its undoing. */
export async function setHostState(pool: Pool, id: string, state: 'active' | 'draining', reason: string) {
  const { rowCount } = await pool.query(
    `UPDATE hosts SET state = $2, state_reason = $3, state_changed_at = now() WHERE id = $1`,
    [id, state, reason],
  );
  return (rowCount ?? 0) > 0;
}

/** Hosts whose heartbeat is older than `graceSeconds` and that are not yet lost. */
export async function staleHosts(
  pool: Pool,
  graceSeconds: number,
): Promise<{ id: string; heartbeatAt: Date }[]> {
  const { rows } = await pool.query<{ id: string; heartbeatAt: Date }>(
    `SELECT id, heartbeat_at AS "heartbeatAt" FROM hosts
     WHERE state <> 'lost' AND heartbeat_at < now() - make_interval(secs => $1)`,
    [graceSeconds],
  );
  return rows;
}

/** Declares the host lost, unless it sent a heartbeat meanwhile; true when it did. */
export async function markHostLost(pool: Pool, id: string, graceSeconds: number, reason: string) {
  const { rowCount } = await pool.query(
    `UPDATE hosts SET state = 'lost', state_reason = $3, state_changed_at = now()
     WHERE id = $1 AND state <> 'lost' AND heartbeat_at < now() - make_interval(secs => $2)`,
    [id, graceSeconds, reason],
  );
  return (rowCount ?? 0) > 0;
}

/** Tasks not ended on hosts that are lost: each must be told (again, until its row ends). */
export async function openTasksOnLostHosts(
  pool: Pool,
): Promise<{ taskId: string; hostId: string; reason: string }[]> {
  const { rows } = await pool.query<{ taskId: string; hostId: string; reason: string }>(
    `SELECT t.id AS "taskId", h.id AS "hostId", coalesce(h.state_reason, 'lost') AS reason
     FROM tasks t JOIN hosts h ON h.id = t.host_id
     WHERE h.state = 'lost' AND t.status NOT IN ('terminated', 'failed')`,
  );
  return rows;
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
                 AND t.status NOT IN ('pending', 'terminated', 'failed')) AS used
       FROM hosts h WHERE h.state = 'active' AND h.heartbeat_at > now() - make_interval(secs => $2)
       ORDER BY h.max_vms - (SELECT count(*) FROM tasks t WHERE t.host_id = h.id
                 AND t.status NOT IN ('pending', 'terminated', 'failed')) DESC, h.id`,
      [taskId, staleAfterSeconds],
    );
    const host = rows.find((h) => h.used < h.maxVms);
    if (!host) {
      throw new NoCapacity(
        rows.length
          ? `every live host is full (${rows.map((h) => `${h.id}: ${h.used}/${h.maxVms} VMs`).join(', ')})`
          : 'no host is taking tasks (none is active with a recent heartbeat)',
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
