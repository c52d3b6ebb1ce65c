/** A task's repository and pull request (issue 20), in columns of its row. */
import type { RepoSpec } from '../repo.js';
import { CHANNELS } from './channels.js';
import type { Pool } from './pool.js';

export async function setTaskRepoRow(pool: Pool, taskId: string, r: RepoSpec): Promise<void> {
  await pool.query('UPDATE tasks SET repo_owner = $2, repo_name = $3, repo_base = $4 WHERE id = $1', [
    taskId,
    r.owner,
    r.repo,
    r.base ?? null,
  ]);
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

/** Records the task's pull request (watchers hear of it: the thread and the page show the link). */
export async function setPullRequest(
  pool: Pool,
  taskId: string,
  pr: { url: string; number: number },
): Promise<void> {
  await pool.query(
    `WITH u AS (UPDATE tasks SET pr_url = $2, pr_number = $3, updated_at = now() WHERE id = $1 RETURNING id)
     SELECT pg_notify('${CHANNELS.task}', id) FROM u`,
    [taskId, pr.url, pr.number],
  );
}
