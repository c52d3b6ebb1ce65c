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
import { saveDiff } from '../../common/db/task-diffs.js';
import { recordPullRequest } from '../../common/db/task-repo.js';
import { getTask, readTaskFiles } from '../../common/db/tasks.js';
import { diffStat } from '../../common/diff.js';
import type { PullRequestOutcome } from '../../common/pull-request.js';
import { forgeLoginOf, taskBranch } from '../../common/repo.js';
import type { SidecarMessage } from '../../vm/protocol.js';
import type { HostActivityDeps } from '../deps.js';
import { liveSidecars } from '../live-sidecars.js';
import { connectSidecar } from '../sidecar-session.js';
import { takeDiff } from './diff.js';
import { ForgeError, forgeClientFromConfig, openTaskPullRequest } from './pull-request.js';
import { allowTaskRepo } from './task-repo.js';

const PUSH_TIMEOUT_MS = 10 * 60_000;
/** A forge that answers 5xx or rate-limits is tried this many times (the workflow's retry policy allows more). */
const FORGE_ATTEMPTS = 5;

const final = (type: string, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

export function createForgeActivities(d: HostActivityDeps, checkedId: (raw: unknown) => string) {
  return {
    async openPullRequest({
      taskId: raw,
      trigger = 'asked',
      turn,
    }: {
      taskId: string;
      trigger?: PullRequestOutcome['trigger'];
      turn?: number;
    }): Promise<PullRequestResult> {
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
      let stat: PullRequestOutcome['stat'];
      // Every outcome is kept on the row, in order: the thread posts each once.
      const told = { trigger, ...(turn !== undefined ? { turn } : {}), branch };
      const failed = async (type: string, message: string) => {
        await recordPullRequest(d.pool, taskId, {
          ...told,
          kind: 'failed',
          error: message.slice(0, 1500),
          stat,
        });
        return final(type, message);
      };
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
        // What the pull request will hold, for the thread's stat and the page (taken after the
        // commit: the working tree is then the branch).
        if (pushed.ok && !pushed.empty) {
          c.heartbeat('pull request: taking the diff');
          const taken = await takeDiff(conn!);
          await saveDiff(d.pool, taskId, taken);
          if ('doc' in taken) stat = diffStat(taken.doc);
        }
      } finally {
        clearInterval(beat);
        if (own) conn!.close();
      }
      if (!pushed.ok)
        throw await failed('PushFailed', `the push of ${branch} failed:\n${pushed.output.slice(-3000)}`);
      if (pushed.empty)
        throw final(
          'NothingToOpen',
          `${branch} has no change against its base: there is nothing to open a pull request for`,
        );

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
          requestedBy: forgeLoginOf(d.config, row.owner),
        });
        if (pr.assignError)
          d.logger.warn({ taskId, err: pr.assignError }, 'forge: the pull request could not be assigned');
        await recordPullRequest(d.pool, taskId, {
          ...told,
          kind: pr.created ? 'opened' : 'updated',
          number: pr.number,
          url: pr.url,
          stat,
        });
        return {
          number: pr.number,
          url: pr.url,
          created: pr.created,
          branch,
          pushOutput: pushed.output.slice(-2000),
          ...(stat ? { stat } : {}),
        };
      } catch (err) {
        if (err instanceof ForgeError) {
          // Said in the thread once it will not be tried again.
          if (!err.retryable || c.info.attempt >= FORGE_ATTEMPTS)
            await recordPullRequest(d.pool, taskId, { ...told, kind: 'failed', error: err.message, stat });
          throw ApplicationFailure.create({
            type: 'ForgeError',
            message: err.message,
            nonRetryable: !err.retryable || c.info.attempt >= FORGE_ATTEMPTS,
          });
        }
        throw err;
      }
    },
  };
}
