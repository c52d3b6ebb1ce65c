/**
 * The host's side of a task's repository (issue 20): the egress proxy's forge route is told which
 * repository and branch the task may use (fetch that repository, push only lia/<task id>), and the
 * guest's sidecar is told what to clone. The proxy's map is in memory: it is set at boot, after a
 * restore and whenever a worker (re)takes a task's pump, and cleared when the VM is destroyed.
 */
import type { Config } from '../../common/config.js';
import type { Pool } from '../../common/db/pool.js';
import { getTaskRepoRow } from '../../common/db/task-repo.js';
import type { Logger } from '../../common/logger.js';
import { type RepoSpec, taskBranch } from '../../common/repo.js';
import { guestGitRewrite, guestRemoteUrl } from '../../vm/egress/forge.js';
import type { EgressProxy } from '../../vm/egress/proxy.js';
import type { HostMessage } from '../../vm/protocol.js';

export type RepoEgress = Partial<Pick<EgressProxy, 'setTaskRepo' | 'clearTaskRepo'>>;

/** Where the guest's git goes: the proxy endpoint in the guest (the driver's HTTP_PROXY). */
const DEFAULT_ENDPOINT = 'http://127.0.0.1:3128';

export function repoMessage(
  config: Config,
  taskId: string,
  repo: RepoSpec,
  guestEnv: Record<string, string> = {},
): Extract<HostMessage, { type: 'repo' }> {
  return {
    type: 'repo',
    url: guestRemoteUrl(config.forge.git_url, repo.owner, repo.repo),
    ...(repo.base ? { base: repo.base } : {}),
    branch: taskBranch(taskId),
    dir: repo.repo,
    rewrite: guestGitRewrite(config.forge.git_url, guestEnv.HTTP_PROXY ?? DEFAULT_ENDPOINT),
  };
}

/**
 * Tells the proxy the task's repository, if it has one. A host without a forge logs it: the
 * guest's git is then refused by the proxy with the reason, which the clone shows.
 */
export async function allowTaskRepo(
  d: { pool: Pool; logger: Logger; egress?: RepoEgress },
  taskId: string,
): Promise<RepoSpec | undefined> {
  const repo = await getTaskRepoRow(d.pool, taskId);
  if (!repo || !d.egress?.setTaskRepo) return repo;
  try {
    d.egress.setTaskRepo(taskId, {
      owner: repo.owner,
      repo: repo.repo,
      branch: taskBranch(taskId),
      ...(repo.base ? { base: repo.base } : {}),
    });
  } catch (err) {
    d.logger.warn({ taskId, err: (err as Error).message }, 'forge: the task repository cannot be allowed');
  }
  return repo;
}

export function forgetTaskRepo(d: { egress?: RepoEgress }, taskId: string): void {
  d.egress?.clearTaskRepo?.(taskId);
}
