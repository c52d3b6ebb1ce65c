import type { TaskRecordPatch } from '../activities.js';
import type { PermissionMode } from '../permission-policy.js';
import type { PullRequestOutcome } from '../pull-request.js';
import {
  budgetTokens,
  ENDED_STATUSES,
  type HeadlessSummary,
  RUNNING_STATUSES,
  type Runtime,
  type TaskFields,
  type TaskStatus,
  type TokenCounts,
} from '../task.js';
import { CHANNELS } from './channels.js';
import { createFirstTurn } from './conversation.js';
import { inTransaction, type Pool } from './pool.js';

/** A task's row; its token counts are those the egress proxy recorded. */
export interface TaskRow extends TaskFields, TokenCounts {
  costUsd: number;
  summary: HeadlessSummary | null;
  /** Why the task's model calls are refused (a token budget is spent), while they are. */
  budgetNotice: string | null;
  /** When the idle timer suspends the task (running tasks only), as the workflow last projected it. */
  idleDeadline: Date | null;
  /** When its questions, decisions or turns last changed. */
  conversationAt: Date | null;
  /** Questions waiting for the owner's answer. */
  openQuestions: number;
  /** How its VM was started (the host's boot writes it). */
  vmStart: string | null;
  /** The forge repository (issue 20), and the task's pull request once opened. */
  repoOwner?: string | null;
  repoName?: string | null;
  repoBase?: string | null;
  prUrl?: string | null;
  prNumber?: number | null;
  prEvents?: number;
  prLast?: PullRequestOutcome | null;
  autoPr?: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = `id, owner, runtime, status, prompt_first_line AS "promptFirstLine", host_id AS "hostId",
  driver, acceleration, error, exit_code AS "exitCode", input_tokens::float8 AS "inputTokens",
  output_tokens::float8 AS "outputTokens", cache_read_tokens::float8 AS "cacheReadTokens",
  cache_creation_tokens::float8 AS "cacheCreationTokens", cost_usd::float8 AS "costUsd", summary,
  budget_notice AS "budgetNotice",
  idle_deadline AS "idleDeadline", vm_start AS "vmStart", permission_mode AS "permissionMode", conversation_at AS "conversationAt",
  (SELECT count(*) FROM task_questions q WHERE q.task_id = tasks.id AND q.decision IS NULL)::int AS "openQuestions",
  repo_owner AS "repoOwner", repo_name AS "repoName", repo_base AS "repoBase", pr_url AS "prUrl",
  pr_number AS "prNumber", pr_events AS "prEvents", pr_last AS "prLast", auto_pr AS "autoPr", created_at AS "createdAt", updated_at AS "updatedAt"`;

const sqlList = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');
const ENDED = `status IN (${sqlList(ENDED_STATUSES)})`;

export interface UserQuotas {
  /** Tasks not ended (running or suspended). */
  live: number;
  /** Tasks starting or running: their VMs hold CPU and memory. */
  running: number;
  /** Tasks not ended, all owners together. */
  total: number;
}

const RUNNING = `status IN (${sqlList(RUNNING_STATUSES)})`;

/** The owner's tasks that are starting or running, but for `except`. */
export async function countRunning(pool: Pool, owner: string, except?: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasks WHERE owner = $1 AND ${RUNNING} AND id <> $2`,
    [owner, except ?? ''],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Creates the task's row and files in one transaction, unless the owner is at a quota: then it
 * creates nothing and says which. The per-owner advisory lock makes the count-then-insert safe
 * under concurrency.
 */
export async function createTask(
  pool: Pool,
  t: {
    id: string;
    owner: string;
    runtime: Runtime;
    promptFirstLine: string;
    /** Claude Code's permission mode (null for a shell). */
    permissionMode?: PermissionMode | null;
    /** A headless conversation's first turn (the prompt), recorded with the task. */
    firstTurn?: string;
    files: { name: string; data: Buffer }[];
    /** What its VM will hold, counted against its host. */
    size: { vcpus: number; memoryMib: number; storageGb: number };
  },
  quotas: UserQuotas,
): Promise<keyof UserQuotas | undefined> {
  return inTransaction<keyof UserQuotas | undefined>(pool, async (client) => {
    // One creation at a time: the counts below (the owner's and everyone's) then hold.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('lia:create'))`);
    const all = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE NOT ${ENDED}`);
    if ((all.rows[0]?.n ?? 0) >= quotas.total) return { rollback: 'total' as const };
    const { rows } = await client.query<{ live: number; running: number }>(
      `SELECT count(*) FILTER (WHERE NOT ${ENDED})::int AS live,
              count(*) FILTER (WHERE ${RUNNING})::int AS running
       FROM tasks WHERE owner = $1`,
      [t.owner],
    );
    const { live = 0, running = 0 } = rows[0] ?? {};
    const refused = live >= quotas.live ? 'live' : running >= quotas.running ? 'running' : undefined;
    if (refused) return { rollback: refused };
    await client.query(
      `INSERT INTO tasks (id, owner, runtime, status, prompt_first_line, vcpus, memory_mib, storage_gb, permission_mode)
       VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)`,
      [
        t.id,
        t.owner,
        t.runtime,
        t.promptFirstLine,
        t.size.vcpus,
        t.size.memoryMib,
        t.size.storageGb,
        t.permissionMode ?? null,
      ],
    );
    if (t.firstTurn !== undefined) await createFirstTurn(client, t.id, t.firstTurn, t.owner);
    for (const f of t.files) {
      await client.query('INSERT INTO task_files (task_id, name, data) VALUES ($1, $2, $3)', [
        t.id,
        f.name,
        f.data,
      ]);
    }
    return undefined;
  });
}

export async function getTask(pool: Pool, id: string): Promise<TaskRow | undefined> {
  const { rows } = await pool.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks WHERE id = $1`, [id]);
  return rows[0];
}

export async function listTasks(pool: Pool, owner: string | undefined, limit = 100): Promise<TaskRow[]> {
  const { rows } = owner
    ? await pool.query<TaskRow>(
        `SELECT ${COLUMNS} FROM tasks WHERE owner = $1 ORDER BY created_at DESC LIMIT $2`,
        [owner, limit],
      )
    : await pool.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks ORDER BY created_at DESC LIMIT $1`, [limit]);
  return rows;
}

const PATCH_COLUMNS: Record<keyof TaskRecordPatch, string> = {
  status: 'status',
  hostId: 'host_id',
  driver: 'driver',
  acceleration: 'acceleration',
  error: 'error',
  exitCode: 'exit_code',
  idleDeadline: 'idle_deadline',
};

export async function updateTask(pool: Pool, id: string, patch: TaskRecordPatch): Promise<void> {
  const sets: string[] = [];
  const values: unknown[] = [id];
  for (const [key, column] of Object.entries(PATCH_COLUMNS)) {
    const v = patch[key as keyof TaskRecordPatch];
    if (v === undefined) continue;
    values.push(key === 'idleDeadline' && typeof v === 'number' ? new Date(v) : v);
    sets.push(`${column} = $${values.length}`);
  }
  if (!sets.length) return;
  // Watchers (the API's streams, the bot's threads) learn of the change in the same statement.
  await pool.query(
    `WITH u AS (UPDATE tasks SET ${sets.join(', ')}, updated_at = now() WHERE id = $1 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    values,
  );
}

/** The idle deadline the output pump projects each time it reports agent I/O (watchers are told). */
/**
 * Moves a running task's idle deadline to `inMs` from now, on PostgreSQL's clock: the host's
 * pump, which sees the agent's I/O first-hand, writes it; the workflow checks it before it
 * suspends (idleLeftMs), so reports held up on their way to Temporal cannot suspend a busy task.
 */
export async function setIdleDeadline(pool: Pool, id: string, inMs: number): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET idle_deadline = now() + $2 * interval '1 millisecond'
                 WHERE id = $1 AND status = 'running' RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [id, inMs],
  );
}

/** Milliseconds until the task's recorded idle deadline (negative: past), or null when none. */
export async function idleLeftMs(pool: Pool, id: string): Promise<number | null> {
  const { rows } = await pool.query<{ left: string | null }>(
    `SELECT floor(EXTRACT(EPOCH FROM idle_deadline - now()) * 1000)::bigint AS left FROM tasks WHERE id = $1`,
    [id],
  );
  const left = rows[0]?.left;
  return left == null ? null : Number(left);
}

/**
 * Marks every link of the task issued before now as revoked (a new link, a stop), and returns
 * the instant (epoch ms) from which links are valid: a new link is issued at exactly that time.
 */
export async function revokeLinks(pool: Pool, id: string): Promise<number> {
  const { rows } = await pool.query<{ at: number }>(
    // Watchers hear of it: open sockets of revoked links close.
    `WITH u AS (UPDATE tasks SET links_not_before = date_trunc('milliseconds', clock_timestamp())
       WHERE id = $1 RETURNING id, links_not_before)
     SELECT (extract(epoch FROM links_not_before) * 1000)::float8 AS at, pg_notify('${CHANNELS.task}', id) FROM u`,
    [id],
  );
  return rows[0]?.at ?? Date.now();
}

/** Epoch ms before which the task's links are revoked (0: none is). */
export async function linksNotBefore(pool: Pool, id: string): Promise<number> {
  const { rows } = await pool.query<{ at: number | null }>(
    `SELECT (extract(epoch FROM links_not_before) * 1000)::float8 AS at FROM tasks WHERE id = $1`,
    [id],
  );
  return rows[0]?.at ?? 0;
}

/**
 * Marks the task's first output stored (once): returns the seconds since its creation the first
 * time, undefined after (a pump resumed after a restart).
 */
export async function firstOutputStored(pool: Pool, id: string): Promise<number | undefined> {
  const { rows } = await pool.query<{ s: number }>(
    `UPDATE tasks SET first_output_at = clock_timestamp() WHERE id = $1 AND first_output_at IS NULL
     RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS s`,
    [id],
  );
  return rows[0]?.s;
}

/** The task's status, or undefined when there is no such row. */
export async function taskStatus(pool: Pool, id: string): Promise<TaskStatus | undefined> {
  const { rows } = await pool.query<{ status: TaskStatus }>('SELECT status FROM tasks WHERE id = $1', [id]);
  return rows[0]?.status;
}

/** Open rows not changed for `quietSeconds`: the sweeper checks each against its workflow. */
export async function quietOpenTasks(
  pool: Pool,
  quietSeconds: number,
  limit = 200,
): Promise<{ id: string; status: TaskStatus }[]> {
  const { rows } = await pool.query<{ id: string; status: TaskStatus }>(
    `SELECT id, status FROM tasks WHERE NOT ${ENDED} AND updated_at < now() - make_interval(secs => $1)
     ORDER BY updated_at LIMIT $2`,
    [quietSeconds, limit],
  );
  return rows;
}

/**
 * Ends a row that is still open (a task whose workflow is gone), with the reason; its queued
 * input and files go. False when the row had ended meanwhile.
 */
export async function closeTask(pool: Pool, id: string, status: 'terminated' | 'failed', error: string) {
  const { rowCount } = await pool.query(
    `WITH u AS (UPDATE tasks SET status = $2, error = $3, idle_deadline = NULL, updated_at = now()
       WHERE id = $1 AND NOT ${ENDED} RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [id, status, error],
  );
  if (!rowCount) return false;
  await dropTaskLeftovers(pool, id);
  return true;
}

/** Input nobody will read again and the files the agent was started with (the output log stays). */
export async function dropTaskLeftovers(pool: Pool, id: string): Promise<void> {
  await pool.query('DELETE FROM task_input WHERE task_id = $1', [id]);
  await pool.query('DELETE FROM input_senders WHERE task_id = $1', [id]);
  await pool.query('DELETE FROM task_files WHERE task_id = $1', [id]);
}

export async function deleteTask(pool: Pool, id: string): Promise<void> {
  await pool.query('DELETE FROM tasks WHERE id = $1', [id]);
}

export async function readTaskFiles(pool: Pool, id: string): Promise<{ name: string; data: Buffer }[]> {
  const { rows } = await pool.query<{ name: string; data: Buffer }>(
    'SELECT name, data FROM task_files WHERE task_id = $1 ORDER BY name',
    [id],
  );
  return rows;
}

/**
 * Adds a model response's tokens and cost to the task, and to its owner's usage of the day (UTC,
 * for the daily budget); watchers are told.
 */
export async function addUsage(pool: Pool, id: string, t: TokenCounts, cost: number): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET input_tokens = input_tokens + $2, output_tokens = output_tokens + $3,
       cache_read_tokens = cache_read_tokens + $4, cache_creation_tokens = cache_creation_tokens + $5,
       cost_usd = cost_usd + $6, updated_at = now() WHERE id = $1 RETURNING id, owner),
     d AS (INSERT INTO usage_daily (owner, day, tokens, cost_usd)
       SELECT owner, (now() AT TIME ZONE 'UTC')::date, $7, $6 FROM u
       ON CONFLICT (owner, day) DO UPDATE SET tokens = usage_daily.tokens + EXCLUDED.tokens,
         cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [id, t.inputTokens, t.outputTokens, t.cacheReadTokens, t.cacheCreationTokens, cost, budgetTokens(t)],
  );
}

/** What the token budgets are checked against: the task's tokens and its owner's of today (UTC). */
export async function budgetUsage(
  pool: Pool,
  id: string,
): Promise<
  { owner: string; taskTokens: number; ownerTodayTokens: number; notice: string | null } | undefined
> {
  const { rows } = await pool.query<{
    owner: string;
    taskTokens: number;
    ownerTodayTokens: number;
    notice: string | null;
  }>(
    `SELECT t.owner, (t.input_tokens + t.output_tokens + t.cache_read_tokens + t.cache_creation_tokens)::float8
       AS "taskTokens", coalesce(d.tokens, 0)::float8 AS "ownerTodayTokens", t.budget_notice AS notice
     FROM tasks t LEFT JOIN usage_daily d ON d.owner = t.owner AND d.day = (now() AT TIME ZONE 'UTC')::date
     WHERE t.id = $1`,
    [id],
  );
  return rows[0];
}

/** Sets (or clears, with null) why the task's model calls are refused; watchers are told. */
export async function setBudgetNotice(pool: Pool, id: string, notice: string | null): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET budget_notice = $2, updated_at = now()
       WHERE id = $1 AND budget_notice IS DISTINCT FROM $2 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [id, notice],
  );
}

export async function saveSummary(pool: Pool, id: string, summary: HeadlessSummary): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET summary = $2, updated_at = now() WHERE id = $1 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [id, JSON.stringify(summary)],
  );
}

/** How the task's VM was started (written by the host's boot: a template, or a cold boot and why). */
export async function setVmStart(pool: Pool, taskId: string, vmStart: string): Promise<void> {
  await pool.query('UPDATE tasks SET vm_start = $2 WHERE id = $1', [taskId, vmStart.slice(0, 2000)]);
}
