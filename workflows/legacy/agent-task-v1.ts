/**
 * The first version of the task workflow, FROZEN: tasks started before the entity rewrite
 * (workflows/task.ts) replay through this code, so not a line of what it does may change
 * (tests/histories/*-2026-11-2[56].json hold it to that). A run of it that continues as new
 * goes on as the new version. Remove it once no such task is open (see docs/lifecycle.md).
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AgentExit,
  ControlActivities,
  HostActivities,
  TaskRecordPatch,
} from '../../common/activities.js';
import { hostQueue } from '../../common/queues.js';
import { HOST_KEY, STATUS_KEY } from '../../common/search-attributes.js';
import {
  type CarriedState,
  isEnded,
  type TaskInput,
  type TaskState,
  type TaskStatus,
} from '../../common/task.js';
import { agentActivitySignal, resumeUpdate, stateQuery, terminateSignal } from '../definitions.js';

const control = proxyLocalActivities<ControlActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '200 ms', maximumInterval: '10 seconds', nonRetryableErrorTypes: ['NoCapacity'] },
});

/** Every VM activity runs on the queue of the host that holds the VM. */
function hostActivities(hostId: string) {
  const taskQueue = hostQueue(hostId);
  // A host that is gone for good fails its tasks visibly instead of leaving them waiting.
  const scheduleToStartTimeout = '2 minutes';
  return {
    lifecycle: proxyActivities<HostActivities>({
      taskQueue,
      scheduleToStartTimeout,
      startToCloseTimeout: '15 minutes',
      heartbeatTimeout: '60 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 5 },
    }),
    pump: proxyActivities<HostActivities>({
      taskQueue,
      scheduleToStartTimeout,
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: '10 seconds',
      // Suspend must not start while the pump still holds the sidecar's connection.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '500 ms', maximumInterval: '10 seconds', maximumAttempts: 50 },
    }),
    cleanup: proxyActivities<HostActivities>({
      taskQueue,
      scheduleToStartTimeout: '10 minutes',
      startToCloseTimeout: '5 minutes',
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
    }),
  };
}

type RunOutcome =
  | { kind: 'idle' }
  | { kind: 'terminate' }
  | { kind: 'exited'; exit: AgentExit }
  | { kind: 'continue' };

export async function agentTaskV1(input: TaskInput, carried?: CarriedState): Promise<TaskState> {
  const state: TaskState = carried?.state ?? {
    taskId: input.taskId,
    owner: input.owner,
    runtime: input.runtime,
    status: 'pending',
    lastActivityAt: Date.now(),
    suspendCount: 0,
    createdAt: Date.now(),
    updatedAt: Date.now(),
  };
  let terminateRequest: { reason?: string; by?: string } | undefined;
  let resumeRequested = false;
  let suspending = false;
  let ioSeen = false;

  setHandler(stateQuery, () => ({ ...state }));
  setHandler(terminateSignal, (req) => {
    terminateRequest ??= req;
  });
  setHandler(agentActivitySignal, () => {
    state.lastActivityAt = Date.now();
    ioSeen = true;
  });
  setHandler(
    resumeUpdate,
    async (_req: { by?: string }) => {
      resumeRequested = true;
      await condition(() => !resumeRequested || isEnded(state.status));
      return { ...state };
    },
    {
      validator: (_req: { by?: string }) => {
        if (state.status === 'suspended' || suspending) return;
        throw new Error(
          state.status === 'running'
            ? `task ${state.taskId} is already running; only a suspended task can be resumed`
            : `task ${state.taskId} is ${state.status}; only a suspended task can be resumed`,
        );
      },
    },
  );

  const shouldContinueAsNew = () =>
    workflowInfo().continueAsNewSuggested ||
    (input.maxHistoryEvents !== undefined && workflowInfo().historyLength >= input.maxHistoryEvents);

  /** The status in the workflow's state and search attributes (the task's row is the caller's). */
  function showStatus(status: TaskStatus): void {
    state.status = status;
    state.updatedAt = Date.now();
    if (status !== 'running') state.idleDeadline = undefined;
    upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
  }

  async function setStatus(status: TaskStatus, patch: TaskRecordPatch = {}): Promise<void> {
    showStatus(status);
    await control.recordTask({ taskId: state.taskId, patch: { ...patch, status } });
  }

  let host: ReturnType<typeof hostActivities> | undefined = state.hostId
    ? hostActivities(state.hostId)
    : undefined;
  let finalStatus: TaskStatus = 'terminated';

  try {
    if (state.status === 'pending') {
      const placement = await control.placeTask({
        taskId: state.taskId,
        owner: state.owner,
        limits: input.limits,
      });
      state.hostId = placement.hostId;
      host = hostActivities(placement.hostId);
      upsertSearchAttributes([{ key: HOST_KEY, value: placement.hostId }]);
      // Placement records the task as starting on its host in the same transaction: one local
      // activity less before the boot. Histories from before that still replay their record.
      if (patched('placement-records-starting')) showStatus('starting');
      else await setStatus('starting', { hostId: placement.hostId });
    }
    if (!host) throw ApplicationFailure.nonRetryable('task has no host');

    if (state.status === 'starting') {
      const boot = await host.lifecycle.bootVm({ taskId: state.taskId, limits: input.limits });
      state.driver = boot.driver;
      state.acceleration = boot.acceleration;
      // The pump starts the agent itself once it is attached: one round trip less before the
      // first byte. Histories from before that change still replay through the old path.
      if (!patched('pump-starts-agent')) {
        await host.lifecycle.startAgent({ taskId: state.taskId, runtime: state.runtime });
      }
      state.lastActivityAt = Date.now();
      await setStatus('running', { driver: boot.driver, acceleration: boot.acceleration });
    }

    for (;;) {
      if (terminateRequest) break;
      if (state.status === 'running') {
        const outcome = await runUntilIdle(host);
        if (outcome.kind === 'terminate') break;
        if (outcome.kind === 'exited') {
          const { exit } = outcome;
          state.exitCode = exit.exitCode ?? undefined;
          if (exit.exitCode !== 0) {
            finalStatus = 'failed';
            state.error =
              exit.message ??
              (exit.signal
                ? `the agent was killed by ${exit.signal}`
                : `the agent exited with code ${exit.exitCode}`);
          }
          break;
        }
        if (outcome.kind === 'idle') {
          suspending = true;
          await host.lifecycle.suspendVm({ taskId: state.taskId });
          suspending = false;
          state.suspendCount += 1;
          await setStatus('suspended');
        }
      } else if (state.status === 'suspended') {
        await condition(() => resumeRequested || !!terminateRequest || shouldContinueAsNew());
        if (terminateRequest) break;
        if (resumeRequested) {
          await host.lifecycle.restoreVm({ taskId: state.taskId });
          state.lastActivityAt = Date.now();
          await setStatus('running');
          resumeRequested = false;
        }
      } else {
        throw ApplicationFailure.nonRetryable(`unexpected state ${state.status}`);
      }
      if (shouldContinueAsNew()) {
        await condition(allHandlersFinished);
        if (!terminateRequest) {
          log.info('continuing as new', { historyLength: workflowInfo().historyLength });
          return await continueAsNew<typeof agentTaskV1>(input, { state: { ...state } });
        }
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      terminateRequest ??= { reason: 'workflow cancelled' };
    } else {
      finalStatus = 'failed';
      state.error = describeFailure(err);
      log.warn('task failed', { error: state.error });
    }
  }

  // Cleanup must finish even when the workflow itself is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    resumeRequested = false;
    if (host) {
      try {
        await host.cleanup.destroyVm({ taskId: state.taskId });
      } catch (err) {
        // The host's reconciler removes what is left once this workflow is closed.
        log.error('destroyVm failed; the host reconciler will remove the VM', {
          error: describeFailure(err),
        });
        if (finalStatus !== 'failed') state.error = `cleanup incomplete: ${describeFailure(err)}`;
      }
    }
    await setStatus(finalStatus, { error: state.error ?? null, exitCode: state.exitCode ?? null });
  });
  return { ...state };

  /** Runs the output pump until the idle timer fires, the agent exits, or something else needs the loop. */
  async function runUntilIdle(h: NonNullable<typeof host>): Promise<RunOutcome> {
    const scope = new CancellationScope();
    let pumpResult: { exit: AgentExit } | { error: unknown } | undefined;
    const pump = scope
      .run(() =>
        h.pump.pumpOutput({ taskId: state.taskId, runtime: state.runtime, reportMs: input.activityReportMs }),
      )
      .then(
        (exit) => {
          pumpResult = { exit };
        },
        (error) => {
          pumpResult = { error };
        },
      );
    let outcome: RunOutcome | undefined;
    while (!outcome) {
      const deadline = state.lastActivityAt + input.limits.idleTimeoutMs;
      state.idleDeadline = deadline;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        outcome = { kind: 'idle' };
        break;
      }
      ioSeen = false;
      await condition(() => ioSeen || !!terminateRequest || !!pumpResult || shouldContinueAsNew(), remaining);
      if (terminateRequest) outcome = { kind: 'terminate' };
      else if (pumpResult && 'exit' in pumpResult) outcome = { kind: 'exited', exit: pumpResult.exit };
      else if (pumpResult) throw pumpResult.error;
      else if (shouldContinueAsNew()) outcome = { kind: 'continue' };
    }
    if (!pumpResult) {
      scope.cancel();
      await pump;
    }
    if (pumpResult && 'error' in pumpResult && !isCancellation(pumpResult.error)) throw pumpResult.error;
    return outcome;
  }
}

function describeFailure(err: unknown): string {
  let e: unknown = err;
  // Unwrap ActivityFailure → ApplicationFailure to show the activity's own message.
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof Error) return e.message;
  return String(e);
}
