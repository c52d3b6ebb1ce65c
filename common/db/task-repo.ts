/** A task's repository and pull request (issue 20), in columns of its row. */
import type { PullRequestOutcome } from '../pull-request.js';
import type { RepoSpec } from '../repo.js';
import { CHANNELS } from './channels.js';
import type { Pool } from './pool.js';

/** `autoPr`: a pull request after every headless turn that changed the repository. */
export async function setTaskRepoRow(
  pool: Pool,
  taskId: string,
  r: RepoSpec,
  autoPr: boolean,
): Promise<void> {
  await pool.query(
    'UPDATE tasks SET repo_owner = $2, repo_name = $3, repo_base = $4, auto_pr = $5 WHERE id = $1',
    [taskId, r.owner, r.repo, r.base ?? null, autoPr],
  );
}

export async function getTaskRepoRow(pool: Pool, taskId: string): Promise<RepoSpec | undefined> {
  const { rows } = await pool.query<{ owner: string | null; repo: string | null; base: string | null }>(
    'SELECT repo_owner AS owner, repo_name AS repo, repo_base AS base FROM tasks WHERE id = $1',
    [taskId],
  );
  const r = rows[0];
  if (!r?.owner || !r.repo) return undefined;
  return { owner: r.owner, repo: r.repo, ...(r.base ? { base: r.base } : {}) };
}

/**
 * Records what came of a push-and-open (the link too, when there is a pull request); watchers
 * hear of it, and the thread posts each outcome once (in `pr_events` order).
 */
export async function recordPullRequest(pool: Pool, taskId: string, o: PullRequestOutcome): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET pr_url = COALESCE($2, pr_url), pr_number = COALESCE($3, pr_number),
                  pr_last = $4, pr_events = pr_events + 1, updated_at = now()
                WHERE id = $1 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [taskId, o.url ?? null, o.number ?? null, JSON.stringify(o)],
  );
}

/** Whether the end of turn `n` should open the pull request: a repository, and auto or asked in that turn. */
export async function pullRequestAfterTurn(pool: Pool, taskId: string, n: number): Promise<boolean> {
  const { rows } = await pool.query<{ want: boolean }>(
    `SELECT t.repo_owner IS NOT NULL AND (t.auto_pr OR COALESCE(tt.open_pr, false)) AS want
     FROM tasks t LEFT JOIN task_turns tt ON tt.task_id = t.id AND tt.n = $2 WHERE t.id = $1`,
    [taskId, n],
  );
  return rows[0]?.want ?? false;
}
