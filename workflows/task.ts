/**
 * One agent task as an entity: its state in one object, a small loop that moves it between
 * states, and requests (terminate, resume, host lost) that handlers only record. Deterministic:
 * every side effect is an activity, every clock is Temporal's.
 *
 *   pending → starting → running ⇄ suspending → suspended → resuming → running …
 *   any → terminating → terminated ;  on a final error or a lost host → failing → failed
 *
 * History stays small: agent I/O moves the idle deadline without waking the loop (a signal at
 * most once per report interval), and the idle timer is re-armed only when it fires, at the
 * deadline it then reads. A busy task with the default 30-minute idle timeout writes about 250
 * events an hour (bench/history-events.ts).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentExit, TaskRecordPatch } from '../common/activities.js';
import { HOST_KEY, STATUS_KEY } from '../common/search-attributes.js';
import {
  type CarriedState,
  isEnded,
  type TaskInput,
  type TaskState,
  type TaskStatus,
} from '../common/task.js';
import { startConversation } from './conversation.js';
import {
  agentActivitySignal,
  hostLostSignal,
  placementWakeSignal,
  resumeUpdate,
  stateQuery,
  terminateSignal,
} from './definitions.js';
import { control, FINAL_ERRORS, onHost } from './proxies.js';
import { handlePullRequests } from './pull-request.js';

/** A resume that someone waits for (the update returns when it is settled). */
interface ResumeAsk {
  settled: boolean;
  error?: string;
}

type RunOutcome = 'idle' | 'stop' | 'continue' | { exit: AgentExit };

class Stop extends Error {}

/** Marks histories whose idle timer asks the task's row before suspending. */
const IDLE_IN_ROW_PATCH = 'idle-checked-in-row';

/** A waiting task asks again this often even if no wake came (one could be lost). */
const QUEUE_RECHECK_MS = 10 * 60_000;

export async function runTask(input: TaskInput, carried?: CarriedState): Promise<TaskState> {
  const now = Date.now();
  // Version 1 carried the same state shape (no `v`); later versions convert here.
  const state: TaskState = carried?.state ?? {
    taskId: input.taskId,
    owner: input.owner,
    runtime: input.runtime,
    status: 'pending',
    lastActivityAt: now,
    suspendCount: 0,
    createdAt: now,
    updatedAt: now,
  };
  const idleMs = input.limits.idleTimeoutMs;
  let terminate: { reason?: string; by?: string } | undefined;
  let hostLost: string | undefined;
  /** Input was queued while the task was suspending: resume once suspended. */
  let inputWaiting = false;
  /** Room may have come: a task waiting in the queue asks again. */
  let woken = false;
  const resumes: ResumeAsk[] = [];
  /** Why the task ends by itself (its lifetime or its suspended age reached), if it does. */
  let expired: string | undefined;
  const stopping = () => !!terminate || !!hostLost || !!expired;
  const lifetimeEnd = input.limits.lifetimeMs
    ? state.createdAt + input.limits.lifetimeMs
    : Number.POSITIVE_INFINITY;
  const hours = (ms: number) =>
    ms >= 3_600_000
      ? `${Math.round(ms / 360_000) / 10} h`
      : ms >= 60_000
        ? `${Math.round(ms / 60_000)} min`
        : `${Math.round(ms / 1000)} s`;
  /** Ends the task when a cap is reached; true when it did. */
  const checkCaps = (): boolean => {
    const now = Date.now();
    if (now >= lifetimeEnd)
      expired ??= `the task reached its lifetime cap (${hours(input.limits.lifetimeMs!)})`;
    const maxSuspended = input.limits.maxSuspendedMs;
    if (
      maxSuspended &&
      state.status === 'suspended' &&
      state.suspendedAt &&
      now >= state.suspendedAt + maxSuspended
    )
      expired ??= `the task stayed suspended for longer than ${hours(maxSuspended)}; its VM was removed`;
    return !!expired;
  };
  /** The next instant a cap can be reached, from now (for the loop's timers). */
  const capIn = () => {
    const maxSuspended = input.limits.maxSuspendedMs;
    const suspendedEnd =
      maxSuspended && state.status === 'suspended' && state.suspendedAt
        ? state.suspendedAt + maxSuspended
        : Number.POSITIVE_INFINITY;
    return Math.min(lifetimeEnd, suspendedEnd) - Date.now();
  };

  setHandler(stateQuery, () => ({ ...state }));
  setHandler(terminateSignal, (req) => {
    terminate ??= req;
  });
  setHandler(hostLostSignal, ({ hostId, reason }) => {
    if (!state.hostId || hostId === state.hostId) hostLost ??= `host ${hostId} lost: ${reason}`;
  });
  setHandler(placementWakeSignal, () => {
    woken = true;
  });
  setHandler(agentActivitySignal, () => {
    state.lastActivityAt = Math.max(state.lastActivityAt, Date.now());
    if (state.status === 'running') state.idleDeadline = state.lastActivityAt + idleMs;
  });
  setHandler(
    resumeUpdate,
    async (_req: { by?: string }) => {
      const ask: ResumeAsk = { settled: false };
      resumes.push(ask);
      await condition(() => ask.settled);
      if (ask.error)
        throw ApplicationFailure.create({ type: 'ResumeFailed', message: ask.error, nonRetryable: true });
      return { ...state };
    },
    {
      validator: (_req: { by?: string }) => {
        if (stopping() || isEnded(state.status) || ['terminating', 'failing'].includes(state.status))
          throw new Error(`task ${state.taskId} has ended or is ending; it cannot be resumed`);
        if (['suspending', 'suspended', 'resuming'].includes(state.status)) return;
        throw new Error(
          state.status === 'running'
            ? `task ${state.taskId} is already running; only a suspended task can be resumed`
            : `task ${state.taskId} is ${state.status}; only a suspended task can be resumed`,
        );
      },
    },
  );

  // Questions the agent asks before tool uses, and the owner's answers (workflows/conversation.ts).
  let ended = false;
  const conversation = startConversation(state, {
    questionTimeoutMs: input.questionTimeoutMs,
    stopped: () => ended,
  });

  // The coding loop's end (issue 20): the pull request, when asked or after a headless turn.
  handlePullRequests(state, {
    resume: async () => {
      const ask: ResumeAsk = { settled: false };
      resumes.push(ask);
      await condition(() => ask.settled);
      return ask.error;
    },
    stopping,
    host: () => host(),
    describe: describeFailure,
  });

  const settleResumes = (error?: string) => {
    for (const a of resumes.splice(0)) {
      a.settled = true;
      a.error = error;
    }
  };

  /** The status in the workflow's state, its search attribute and the Temporal UI's details. */
  function show(status: TaskStatus, details: string): void {
    state.status = status;
    state.updatedAt = Date.now();
    if (status !== 'running') state.idleDeadline = undefined;
    upsertSearchAttributes([{ key: STATUS_KEY, value: status }]);
    setCurrentDetails(details);
  }

  /** …and in the task's row (which callers read: no query to Temporal for a status). */
  async function record(status: TaskStatus, details: string, patch: TaskRecordPatch = {}): Promise<void> {
    show(status, details);
    await control.recordTask({
      taskId: state.taskId,
      patch: { ...patch, status, idleDeadline: state.idleDeadline ?? null },
    });
  }

  const shouldContinueAsNew = () =>
    workflowInfo().continueAsNewSuggested ||
    (input.maxHistoryEvents !== undefined && workflowInfo().historyLength >= input.maxHistoryEvents);
  /** Only at rest: nobody waits for an answer of this run (so nothing can deadlock on it). */
  const canContinueAsNew = () =>
    shouldContinueAsNew() &&
    !resumes.length &&
    !inputWaiting &&
    !conversation.answerWaiting() &&
    conversation.idle() &&
    !stopping() &&
    allHandlersFinished();

  /**
   * Runs a host activity until it ends, or until `interrupt()` holds or the host is lost; then
   * cancels it and, unless the host is gone, waits until it has stopped (so cleanup never runs
   * beside a boot still creating the VM). Returns undefined when interrupted.
   */
  async function untilDone<T>(call: () => Promise<T>, interrupt: () => boolean): Promise<T | undefined> {
    const scope = new CancellationScope();
    let outcome: { value: T } | { error: unknown } | undefined;
    void scope.run(call).then(
      (value) => {
        outcome = { value };
      },
      (error) => {
        outcome = { error };
      },
    );
    await condition(() => !!outcome || interrupt() || !!hostLost);
    if (!outcome) {
      scope.cancel();
      await condition(() => !!outcome || !!hostLost);
      return undefined;
    }
    if ('error' in outcome) {
      if (isCancellation(outcome.error) && (interrupt() || hostLost)) return undefined;
      throw outcome.error;
    }
    return outcome.value;
  }

  /** `condition` with a timeout that may be unbounded (no cap set): true when `fn` held. */
  const untilOr = (fn: () => boolean, ms: number) =>
    Number.isFinite(ms) ? condition(fn, ms) : condition(fn).then(() => true);

  let finalStatus: 'terminated' | 'failed' = 'terminated';
  let continuing = false;
  const host = () => {
    if (!state.hostId) throw ApplicationFailure.nonRetryable('task has no host');
    return state.hostId;
  };

  try {
    if (state.status === 'pending') await place();
    if (state.status === 'starting') await boot();
    // Runs carried over in a transition (continue-as-new happens only at rest) go on from it.
    if (state.status === 'resuming') await restore();
    if (state.status === 'suspending') await suspend();
    for (;;) {
      if (stopping()) throw new Stop();
      if (state.status === 'running') {
        const outcome = await run();
        if (outcome === 'stop') throw new Stop();
        if (outcome === 'idle') await suspend();
        else if (outcome !== 'continue') {
          const { exit } = outcome;
          state.exitCode = exit.exitCode ?? undefined;
          if (exit.exitCode !== 0) {
            finalStatus = 'failed';
            state.error = exit.message ?? describeExit(exit);
          }
          break;
        }
      } else if (state.status === 'suspended') {
        setCurrentDetails('suspended: waiting for a resume (/resume, the web page, typing, the API)');
        const left = capIn();
        if (
          left <= 0 ||
          !(await untilOr(
            () =>
              resumes.length > 0 ||
              inputWaiting ||
              conversation.answerWaiting() ||
              stopping() ||
              canContinueAsNew(),
            left,
          ))
        ) {
          if (checkCaps()) throw new Stop();
          continue;
        }
        // An answer to a question the agent waits on resumes the task, as typing does.
        if (resumes.length || inputWaiting || conversation.answerWaiting()) await restore();
      } else {
        throw ApplicationFailure.nonRetryable(`unexpected state ${state.status}`);
      }
      if (canContinueAsNew()) {
        continuing = true;
        break;
      }
    }
  } catch (err) {
    if (err instanceof Stop || isCancellation(err)) {
      terminate ??= { reason: 'workflow cancelled' };
      if (hostLost) {
        finalStatus = 'failed';
        state.error = hostLost;
      } else if (expired) state.error = expired;
    } else {
      finalStatus = 'failed';
      state.error = describeFailure(err);
      log.warn('task failed', { error: state.error });
    }
  }

  if (continuing) {
    ended = true;
    log.info('continuing as new', { historyLength: workflowInfo().historyLength, status: state.status });
    const next = makeContinueAsNewFunc<typeof runTask>({
      memo: workflowInfo().memo,
      typedSearchAttributes: workflowInfo().typedSearchAttributes,
    });
    return await next(input, { v: 2, state: { ...state } });
  }

  // Cleanup must finish even when the workflow itself is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    const ending = finalStatus === 'failed' ? 'failing' : 'terminating';
    await record(ending, `${ending}: removing the VM, its disk and snapshot`, { error: state.error ?? null });
    settleResumes(`task ${state.taskId} ${finalStatus === 'failed' ? 'failed' : 'was stopped'}`);
    // Nobody will wait for an answer any more: questions still open are closed with the task.
    await conversation.withdrawAll();
    ended = true;
    if (state.hostId && !hostLost) {
      try {
        await untilDone(
          () => onHost(host(), 'destroying the VM').cleanup.destroyVm({ taskId: state.taskId }),
          () => false,
        );
      } catch (err) {
        // The host's reconciler removes what is left once the row says the task ended.
        log.error('destroyVm failed; the host reconciler will remove the VM', {
          error: describeFailure(err),
        });
        if (finalStatus !== 'failed') state.error = `cleanup incomplete: ${describeFailure(err)}`;
      }
    }
    await record(finalStatus, finalStatus, { error: state.error ?? null, exitCode: state.exitCode ?? null });
  });
  return { ...state };

  /**
   * Asks for a host; with no room, waits in the queue (first come, first served) until a slot
   * frees or a host joins (placementWake) — re-asking at most every ten minutes in case a wake
   * was lost — until a stop, or `maxQueueWaitMs`.
   */
  async function place(): Promise<void> {
    const since = Date.now();
    for (;;) {
      setCurrentDetails('pending: choosing a host');
      const r = await control.placeOrQueue({
        taskId: state.taskId,
        owner: state.owner,
        limits: input.limits,
      });
      if ('hostId' in r) {
        state.hostId = r.hostId;
        upsertSearchAttributes([{ key: HOST_KEY, value: r.hostId }]);
        // Placement recorded the task as starting on its host in the same transaction.
        show('starting', `starting on host ${r.hostId}`);
        return;
      }
      const maxWait = input.maxQueueWaitMs ?? 0;
      const left = since + maxWait - Date.now();
      if (left <= 0)
        throw ApplicationFailure.create({
          type: 'NoCapacity',
          message: `no room for the task within ${hours(maxWait)} (${r.waiting.why})`,
          nonRetryable: true,
        });
      setCurrentDetails(`pending: number ${r.waiting.position} in the queue for a host (${r.waiting.why})`);
      woken = false;
      await condition(() => woken || stopping(), Math.min(left, QUEUE_RECHECK_MS));
      if (stopping()) throw new Stop();
    }
  }

  async function boot(): Promise<void> {
    setCurrentDetails(`starting: booting the VM on host ${host()}`);
    const r = await untilDone(
      () => onHost(host(), 'booting the VM').lifecycle.bootVm({ taskId: state.taskId, limits: input.limits }),
      () => !!terminate,
    );
    if (!r) throw new Stop();
    state.driver = r.driver;
    state.acceleration = r.acceleration;
    state.lastActivityAt = Date.now();
    state.idleDeadline = state.lastActivityAt + idleMs;
    await record('running', runningDetails(), {
      driver: r.driver,
      acceleration: r.acceleration,
      error: null,
    });
  }

  /** Pumps output until the idle timer fires, the agent exits, or the loop is needed elsewhere. */
  async function run(): Promise<RunOutcome> {
    const scope = new CancellationScope();
    let pumped: { exit: AgentExit } | { error: unknown } | undefined;
    const args = {
      taskId: state.taskId,
      runtime: state.runtime,
      reportMs: input.activityReportMs,
      idleTimeoutMs: idleMs,
    };
    void scope
      .run(() => onHost(host(), 'pumping output').pump.pumpOutput(args))
      .then(
        (exit) => {
          pumped = { exit };
        },
        (error) => {
          pumped = { error };
        },
      );
    let outcome: RunOutcome | undefined;
    while (!outcome) {
      state.idleDeadline = state.lastActivityAt + idleMs;
      setCurrentDetails(runningDetails());
      if (checkCaps()) {
        outcome = 'stop';
        break;
      }
      const left = state.idleDeadline - Date.now();
      if (left <= 0) {
        // The pump writes each report's deadline to the task's row as well as signalling: after
        // Temporal was away the timer fires on its return, ahead of the reports still queued.
        const rowLeft = patched(IDLE_IN_ROW_PATCH) ? await control.idleLeft({ taskId: state.taskId }) : null;
        if (rowLeft !== null && rowLeft > 0) {
          state.lastActivityAt = Date.now() + rowLeft - idleMs;
          continue;
        }
        outcome = 'idle';
        break;
      }
      // Woken only by what needs the loop; a timer that fires re-reads the (moved) deadline.
      await untilOr(() => stopping() || !!pumped || canContinueAsNew(), Math.min(left, capIn()));
      if (stopping()) outcome = 'stop';
      else if (pumped && 'exit' in pumped) outcome = { exit: pumped.exit };
      else if (pumped) throw pumped.error;
      else if (canContinueAsNew()) outcome = 'continue';
    }
    if (!pumped) {
      scope.cancel();
      // Suspend must not start while the pump still holds the sidecar's connection.
      await condition(() => !!pumped || !!hostLost);
    }
    if (pumped && 'error' in pumped && !isCancellation(pumped.error)) throw pumped.error;
    return outcome;
  }

  async function suspend(): Promise<void> {
    await record('suspending', `suspending: writing the VM's state on host ${host()}`);
    const r = await untilDone(
      () => onHost(host(), 'suspending the VM').lifecycle.suspendVm({ taskId: state.taskId }),
      () => false,
    );
    if (!r) throw new Stop();
    state.suspendCount += 1;
    state.suspendedAt = Date.now();
    // Input typed while the pump was being stopped resumes the task now that it is suspended.
    inputWaiting = !!r.inputWaiting;
    await record('suspended', 'suspended');
  }

  async function restore(): Promise<void> {
    await record('resuming', `resuming: restoring the VM on host ${host()}`, { error: null });
    inputWaiting = false;
    conversation.clearAnswerWaiting();
    try {
      const r = await untilDone(
        () => onHost(host(), 'restoring the VM').lifecycle.restoreVm({ taskId: state.taskId }),
        () => !!terminate,
      );
      if (r === undefined) throw new Stop();
    } catch (err) {
      if (err instanceof Stop || !isFinal(err)) throw err;
      // The snapshot is kept: the task stays suspended, with the reason, and can be tried again.
      state.error = `the VM could not be restored (its snapshot is kept): ${describeFailure(err)}`;
      await record('suspended', `suspended; the last resume failed: ${state.error}`, { error: state.error });
      settleResumes(state.error);
      return;
    }
    state.error = undefined;
    state.lastActivityAt = Date.now();
    state.idleDeadline = state.lastActivityAt + idleMs;
    await record('running', runningDetails());
    settleResumes();
  }

  function runningDetails(): string {
    const at = state.idleDeadline ? new Date(state.idleDeadline).toISOString() : 'unknown';
    return `running on host ${state.hostId}: suspends when idle at ${at}`;
  }
}

/** An activity's failure that retrying cannot mend (see proxies.ts). */
function isFinal(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return (
    cause instanceof ApplicationFailure && (cause.nonRetryable || FINAL_ERRORS.includes(cause.type ?? ''))
  );
}

function describeExit(exit: AgentExit): string {
  return exit.signal
    ? `the agent was killed by ${exit.signal}`
    : `the agent exited with code ${exit.exitCode}`;
}

function describeFailure(err: unknown): string {
  let e: unknown = err;
  // Unwrap ActivityFailure → ApplicationFailure to show the activity's own message.
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof Error) return e.message;
  return String(e);
}
