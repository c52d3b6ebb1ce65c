/**
 * The coding loop's end, in the task workflow (issue 20): push the task's branch and open (or
 * update) its pull request, when the owner asks (the `openPullRequest` update: a suspended task is
 * resumed first) or when a headless turn ends in a task that wants one then (the pump's
 * `pullRequestAfterTurn` signal: best effort — a task no longer running is left alone, the owner
 * can still ask). One at a time: two pushes of one branch would race. Nothing happens unless
 * asked, so histories recorded before this replay unchanged.
 */
import { ActivityFailure, ApplicationFailure, condition, log, setHandler } from '@temporalio/workflow';
import type { PullRequestResult } from '../common/activities.js';
import { isEnded, type TaskState } from '../common/task.js';
import { openPullRequestUpdate, pullRequestAfterTurnSignal } from './definitions.js';
import { onHost } from './proxies.js';

export interface PullRequestDeps {
  /** Resumes a suspended task; the error when it could not be. */
  resume(): Promise<string | undefined>;
  stopping(): boolean;
  host(): string;
  describe(err: unknown): string;
}

export function handlePullRequests(state: TaskState, d: PullRequestDeps): void {
  let busy = false;
  const ended = () =>
    d.stopping() || isEnded(state.status) || ['terminating', 'failing'].includes(state.status);

  async function run(args: { trigger: 'asked' | 'turn'; turn?: number }): Promise<PullRequestResult> {
    await condition(() => !busy);
    busy = true;
    try {
      // Pushing is activity: the idle timer must not suspend the VM under it.
      state.lastActivityAt = Math.max(state.lastActivityAt, Date.now());
      return await onHost(d.host(), 'opening the pull request').forge.openPullRequest({
        taskId: state.taskId,
        ...args,
      });
    } finally {
      busy = false;
    }
  }

  setHandler(
    openPullRequestUpdate,
    async (_req: { by?: string }) => {
      if (['suspending', 'suspended', 'resuming'].includes(state.status)) {
        const error = await d.resume();
        if (error)
          throw ApplicationFailure.create({ type: 'ResumeFailed', message: error, nonRetryable: true });
      }
      await condition(() => state.status === 'running' || ended());
      if (state.status !== 'running')
        throw ApplicationFailure.create({
          type: 'NotRunning',
          message: `task ${state.taskId} is ${state.status}; its pull request cannot be opened`,
          nonRetryable: true,
        });
      try {
        return await run({ trigger: 'asked' });
      } catch (err) {
        throw ApplicationFailure.create({
          type: 'PullRequestFailed',
          message: d.describe(err),
          nonRetryable: true,
        });
      }
    },
    {
      validator: (_req: { by?: string }) => {
        if (ended())
          throw new Error(`task ${state.taskId} has ended or is ending; its pull request cannot be opened`);
        if (state.status === 'pending')
          throw new Error(
            `task ${state.taskId} is still waiting for a host; open its pull request once it runs`,
          );
      },
    },
  );

  setHandler(pullRequestAfterTurnSignal, async ({ n }) => {
    // The pump sends it again after a worker restart: each turn once.
    if (!Number.isSafeInteger(n) || n <= (state.pullRequestTurn ?? 0)) return;
    state.pullRequestTurn = n;
    if (state.status !== 'running' || ended()) return;
    try {
      await run({ trigger: 'turn', turn: n });
    } catch (err) {
      // A turn that changed nothing has nothing to open: not a failure.
      if (
        err instanceof ActivityFailure &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'NothingToOpen'
      )
        return;
      // The host recorded the reason for the thread and the page; the task goes on.
      log.warn('the pull request after a turn failed', { turn: n, error: d.describe(err) });
    }
  });
}
