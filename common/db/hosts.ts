import { CHANNELS } from './channels.js';
import { inTransaction, type Pool } from './pool.js';

/** A host's record: what it runs and what it can hold (its capacity, not one VM's size). */
export interface HostInfo {
  id: string;
  taskQueue: string;
  driver: string;
  acceleration: string;
  maxVms: number;
  vcpus: number;
  memoryMib: number;
  /** Disk for task disks; null: not counted. */
  diskGb: number | null;
}

export type HostState = 'active' | 'draining' | 'lost';

/**
 * The host worker's heartbeat: its record, fresh. A host that was declared lost and comes back
 * is active again (its old tasks have ended; its reconciler removes their VMs); a draining host
 * stays draining until an admin says otherwise.
 */
export async function heartbeatHost(pool: Pool, h: HostInfo): Promise<void> {
  await pool.query(
    `INSERT INTO hosts (id, task_queue, driver, acceleration, max_vms, vcpus, memory_mib, disk_gb)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO UPDATE SET task_queue = $2, driver = $3, acceleration = $4, max_vms = $5,
       vcpus = $6, memory_mib = $7, disk_gb = $8, heartbeat_at = now(),
       state = CASE hosts.state WHEN 'draining' THEN 'draining' ELSE 'active' END,
       state_reason = CASE hosts.state WHEN 'lost' THEN 'came back after it was declared lost'
                      ELSE hosts.state_reason END,
       state_changed_at = CASE hosts.state WHEN 'lost' THEN now() ELSE hosts.state_changed_at END`,
    [h.id, h.taskQueue, h.driver, h.acceleration, h.maxVms, h.vcpus, h.memoryMib, h.diskGb],
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
            (SELECT count(*)::int FROM tasks t WHERE t.host_id = h.id AND ${HELD}) AS used
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

/** What a VM holds, counted against its host. */
export interface VmSize {
  vcpus: number;
  memoryMib: number;
  storageGb: number;
}

export type PlaceResult =
  /** `waitedSeconds`: how long it had waited in the queue (0 when it never had to). */
  | { placed: HostInfo; waitedSeconds: number }
  /** No room now, or others wait longer: this task waits, at `position` (1 = next). */
  | { waiting: { position: number; why: string } };

const HELD = `t.status NOT IN ('pending', 'terminated', 'failed')`;

/**
 * Places a task on the active host with the most room, first come first served: under one lock,
 * a task that others have waited longer than gets in line behind them (a queue of tasks, ordered
 * by when each began to wait), and the one at the head takes the first host where its VM fits —
 * in slots, vCPUs, memory and (when counted) disk. Placed, the task's row says `starting` on its
 * host in the same transaction. A VM no host could ever hold is refused (NoCapacity).
 */
export async function placeOnHost(
  pool: Pool,
  taskId: string,
  staleAfterSeconds: number,
  size: VmSize,
): Promise<PlaceResult> {
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('lia:placement'))`);
    const queue = await client.query<{ id: string }>(
      `SELECT id FROM tasks WHERE status = 'pending' AND queued_at IS NOT NULL ORDER BY queued_at, id`,
    );
    const ahead = queue.rows.findIndex((r) => r.id === taskId);
    const before = ahead < 0 ? queue.rows.length : ahead;
    const { rows } = await client.query<
      HostInfo & { used: number; usedVcpus: number; usedMemoryMib: number; usedDiskGb: number }
    >(
      `SELECT h.id, h.task_queue AS "taskQueue", h.driver, h.acceleration, h.max_vms AS "maxVms", h.vcpus,
              h.memory_mib AS "memoryMib", h.disk_gb AS "diskGb",
              count(t.id)::int AS used,
              coalesce(sum(t.vcpus), 0)::int AS "usedVcpus",
              coalesce(sum(t.memory_mib), 0)::int AS "usedMemoryMib",
              coalesce(sum(t.storage_gb), 0)::int AS "usedDiskGb"
       FROM hosts h LEFT JOIN tasks t ON t.host_id = h.id AND t.id <> $1 AND ${HELD}
       WHERE h.state = 'active' AND h.heartbeat_at > now() - make_interval(secs => $2)
       GROUP BY h.id`,
      [taskId, staleAfterSeconds],
    );
    const fits = (h: (typeof rows)[number], used: boolean) =>
      (!used || h.used < h.maxVms) &&
      (used ? h.usedVcpus : 0) + size.vcpus <= h.vcpus &&
      (used ? h.usedMemoryMib : 0) + size.memoryMib <= h.memoryMib &&
      (h.diskGb === null || (used ? h.usedDiskGb : 0) + size.storageGb <= h.diskGb);
    if (rows.length && !rows.some((h) => fits(h, false)))
      throw new NoCapacity(
        `no host can hold a VM of ${size.vcpus} vCPU and ${size.memoryMib} MiB (the largest: ${Math.max(...rows.map((h) => h.vcpus))} vCPU, ${Math.max(...rows.map((h) => h.memoryMib))} MiB)`,
      );
    const room = rows
      .filter((h) => fits(h, true))
      .sort(
        (a, b) =>
          b.maxVms - b.used - (a.maxVms - a.used) ||
          b.memoryMib - b.usedMemoryMib - (a.memoryMib - a.usedMemoryMib) ||
          a.id.localeCompare(b.id),
      );
    const host = before === 0 ? room[0] : undefined;
    if (!host) {
      await client.query(
        `UPDATE tasks SET queued_at = coalesce(queued_at, clock_timestamp()) WHERE id = $1 AND status = 'pending'`,
        [taskId],
      );
      const why = before
        ? `${before} task${before === 1 ? '' : 's'} waiting before it`
        : rows.length
          ? `every host is full (${rows.map((h) => `${h.id}: ${h.used}/${h.maxVms} VMs`).join(', ')})`
          : 'no host is taking tasks (none is active with a recent heartbeat)';
      return { waiting: { position: before + 1, why } };
    }
    // The task is starting from here on; watchers hear of it when this commits.
    const placed = await client.query<{ waited: number }>(
      `WITH old AS (SELECT queued_at FROM tasks WHERE id = $1),
       u AS (UPDATE tasks SET host_id = $2, status = 'starting', queued_at = NULL, updated_at = now()
         WHERE id = $1 RETURNING id)
       SELECT pg_notify('${CHANNELS.task}', u.id),
              coalesce(extract(epoch FROM clock_timestamp() - (SELECT queued_at FROM old)), 0)::float8 AS waited
       FROM u`,
      [taskId, host.id],
    );
    const { used: _u, usedVcpus: _v, usedMemoryMib: _m, usedDiskGb: _d, ...info } = host;
    return { placed: info, waitedSeconds: placed.rows[0]?.waited ?? 0 };
  });
}

/** The task at the head of the queue (the one to wake when room may have come), if any. */
export async function queueHead(pool: Pool): Promise<string | undefined> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM tasks WHERE status = 'pending' AND queued_at IS NOT NULL ORDER BY queued_at, id LIMIT 1`,
  );
  return rows[0]?.id;
}

/** A waiting task's place in the queue (1 = next) and how many tasks ended in the last hour (for an estimate). */
export async function queuePlace(
  pool: Pool,
  taskId: string,
): Promise<{ position: number; endedLastHour: number } | undefined> {
  const { rows } = await pool.query<{ position: number | null; ended: number }>(
    `SELECT (SELECT count(*)::int + 1 FROM tasks q WHERE q.status = 'pending' AND q.queued_at IS NOT NULL
               AND (q.queued_at, q.id) < (t.queued_at, t.id)) AS position,
            (SELECT count(*)::int FROM tasks e WHERE e.status IN ('terminated', 'failed')
               AND e.host_id IS NOT NULL AND e.updated_at > now() - interval '1 hour') AS ended
     FROM tasks t WHERE t.id = $1 AND t.status = 'pending' AND t.queued_at IS NOT NULL`,
    [taskId],
  );
  const r = rows[0];
  return r?.position ? { position: r.position, endedLastHour: r.ended } : undefined;
}
