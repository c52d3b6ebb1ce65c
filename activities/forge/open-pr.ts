/**
 * The host activity that ends the coding loop (issue 20): in the guest, through the sidecar,
 * commit what the agent left uncommitted and push the task's branch (the guest's git, through the
 * egress proxy, which allows that branch only); then, with the host's credential, open or update
 * the task's pull request, and record its link on the task's row.
 */
import { randomInt } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { PullRequestResult } from '../../common/activities.js';
import { publicUrl } from '../../common/config.js';
import { setPullRequest } from '../../common/db/task-repo.js';
import { getTask, readTaskFiles } from '../../common/db/tasks.js';
import { taskBranch } from '../../common/repo.js';
import type { SidecarMessage } from '../../vm/protocol.js';
import type { HostActivityDeps } from '../deps.js';
import { liveSidecars } from '../live-sidecars.js';
import { connectSidecar } from '../sidecar-session.js';
import { ForgeError, forgeClientFromConfig, openTaskPullRequest } from './pull-request.js';
import { allowTaskRepo } from './task-repo.js';

const PUSH_TIMEOUT_MS = 10 * 60_000;

const final = (type: string, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

export function createForgeActivities(d: HostActivityDeps, checkedId: (raw: unknown) => string) {
  return {
    async openPullRequest({ taskId: raw }: { taskId: string }): Promise<PullRequestResult> {
      const taskId = checkedId(raw);
      const c = Context.current();
      c.heartbeat('pull request: reading the task');
      const row = await getTask(d.pool, taskId);
      if (!row) throw final('NoTask', `no task ${taskId}`);
      const repo = await allowTaskRepo(d, taskId);
      if (!repo) throw final('NoRepo', `task ${taskId} was spawned without a repository`);
      const client = forgeClientFromConfig(d.config);
      if (!client) throw final('NoForge', 'no forge is configured on this host (LIA__FORGE__TOKEN)');
      const branch = taskBranch(taskId);

      // 1. Commit and push, in the guest (the connection the pump holds, or one of our own).
      let conn = liveSidecars.get(taskId);
      const own = !conn || conn.isClosed;
      if (own) conn = await connectSidecar(d, taskId);
      const beat = setInterval(() => c.heartbeat(`pull request: pushing ${branch} from the guest`), 5000);
      let pushed: Extract<SidecarMessage, { type: 'git-result' }>;
      try {
        const id = randomInt(1, 2 ** 31);
        const answer = conn!.waitFor((m) => m.type === 'git-result' && m.id === id, PUSH_TIMEOUT_MS);
        conn!.send({
          type: 'git',
          id,
          op: 'push',
          branch,
          message: `Lia task ${taskId}: ${row.promptFirstLine}`.slice(0, 200),
        });
        pushed = (await answer) as typeof pushed;
      } finally {
        clearInterval(beat);
        if (own) conn!.close();
      }
      if (!pushed.ok)
        throw final('PushFailed', `the push of ${branch} failed:\n${pushed.output.slice(-3000)}`);

      // 2. The pull request, with the host's credential.
      c.heartbeat('pull request: opening it on the forge');
      try {
        const base = repo.base ?? (await client.defaultBranch(repo.owner, repo.repo));
        const prompt =
          (await readTaskFiles(d.pool, taskId)).find((f) => f.name === 'PROMPT.md')?.data.toString('utf8') ??
          row.promptFirstLine;
        const pr = await openTaskPullRequest(client, {
          taskId,
          owner: repo.owner,
          repo: repo.repo,
          branch,
          base,
          prompt,
          summary: row.summary?.result,
          // The page without a token: the pull request may be public.
          taskUrl: `${publicUrl(d.config).replace(/\/$/, '')}/tasks/${taskId}`,
          tokens: row.inputTokens + row.outputTokens + row.cacheReadTokens + row.cacheCreationTokens,
          costUsd: row.costUsd,
        });
        await setPullRequest(d.pool, taskId, pr);
        return { ...pr, branch, pushOutput: pushed.output.slice(-2000) };
      } catch (err) {
        if (err instanceof ForgeError)
          throw ApplicationFailure.create({
            type: 'ForgeError',
            message: err.message,
            nonRetryable: !err.retryable,
          });
        throw err;
      }
    },
  };
}
