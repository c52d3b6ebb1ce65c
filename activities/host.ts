/**
 * Host activities: the VM lifecycle and the output pump, run by the worker of the host that
 * holds the VM. Everything here is idempotent or resumable, because Temporal retries it.
 *
 * The arguments come from a workflow, and anyone who can reach Temporal can start one: the task
 * id is checked again here before it names anything on disk.
 */
import { CancelledFailure, Context } from '@temporalio/activity';
import type { HostActivities } from '../common/activities.js';
import { hasInput } from '../common/db/input.js';
import { getTask, setVmStart } from '../common/db/tasks.js';
import { metrics } from '../common/metrics.js';
import { activityReportInterval, type Runtime, taskIdSchema } from '../common/task.js';
import type { HostActivityDeps } from './deps.js';
import { createForgeActivities } from './forge/open-pr.js';
import { allowTaskRepo, forgetTaskRepo } from './forge/task-repo.js';
import { OutputPump } from './output-pump.js';
import type { PumpHandoff } from './pump-handoff.js';
import { connectSidecar, HELLO_TIMEOUT_MS, sendStart } from './sidecar-session.js';
import { classifyVmError, heartbeating } from './vm-errors.js';

export type { HostActivityDeps } from './deps.js';

function checkedId(taskId: unknown): string {
  const r = taskIdSchema.safeParse(taskId);
  if (!r.success)
    throw classifyVmError(
      new Error(`refused task id ${JSON.stringify(String(taskId).slice(0, 40))}`),
      1,
      true,
    );
  return r.data;
}

/**
 * @param handoff pumps bootVm started, for pumpOutput to take over (the worker stops what is
 *   left at shutdown).
 */
export function createHostActivities(d: HostActivityDeps, handoff: PumpHandoff<OutputPump>): HostActivities {
  const { driver, logger } = d;
  const ctx = () => Context.current();

  /** Starts the agent unless it already runs (an earlier attempt started it). */
  async function startIfIdle(taskId: string, runtime: Runtime): Promise<void> {
    const conn = await connectSidecar(d, taskId);
    try {
      if (conn.hello.agent !== 'idle') return;
      await sendStart(d, conn, taskId, runtime);
      await conn.waitFor((m) => m.type === 'started' || m.type === 'error', HELLO_TIMEOUT_MS);
    } finally {
      conn.close();
    }
  }

  /** Runs a VM step with a heartbeat that says what it waits for, and its errors classified. */
  async function vmStep<T>(
    what: string,
    step: (progress: (m: string) => void, signal: AbortSignal) => Promise<T>,
  ) {
    const c = ctx();
    return heartbeating(c, what, async (progress) => {
      try {
        return await step(progress, c.cancellationSignal);
      } catch (err) {
        if (c.cancellationSignal.aborted) throw new CancelledFailure(`${what}: cancelled`);
        throw classifyVmError(err, c.info.attempt);
      }
    });
  }

  return {
    ...createForgeActivities(d, checkedId),
    async bootVm({ taskId: raw, limits }) {
      const taskId = checkedId(raw);
      const started = Date.now();
      const info = await vmStep(`booting: ${driver.name} (${driver.acceleration})`, (progress, signal) =>
        driver.boot(
          { taskId, vcpus: limits.vcpus, memoryMib: limits.memoryMib, storageGb: limits.storageGb },
          progress,
          signal,
        ),
      );
      if (info) {
        const vmStart =
          info.from === 'template'
            ? `template ${info.template}${info.pooled ? ' (a spare restored ahead)' : ''}`
            : `cold boot${info.reason ? `: ${info.reason}` : ''}`;
        if (info.reason) logger.warn({ taskId, vmStart }, 'the VM was booted cold: its template failed');
        await setVmStart(d.pool, taskId, vmStart).catch((err: Error) =>
          logger.warn({ taskId, err: err.message }, 'could not record how the VM started'),
        );
      }
      // Start the agent and its pump now: its first output reaches the browser while the
      // workflow records the task as running; the workflow's pumpOutput takes the pump over.
      const row = await getTask(d.pool, taskId);
      // The proxy must know the task's repository before the sidecar clones it.
      if (row) await allowTaskRepo(d, taskId);
      if (row) {
        ctx().heartbeat('booting: starting the agent');
        // The same interval the workflow gives pumpOutput (both derive it from the idle timeout).
        const reportMs = activityReportInterval(limits.idleTimeoutMs);
        handoff.offer(await OutputPump.open(d, taskId, row.runtime, reportMs, limits.idleTimeoutMs));
      }
      metrics.vmBootSeconds.observe(
        { driver: driver.name, acceleration: driver.acceleration },
        (Date.now() - started) / 1000,
      );
      return { driver: driver.name, acceleration: driver.acceleration, bootMs: Date.now() - started };
    },

    // Workflows recorded before the pump started the agent itself still schedule this.
    async startAgent({ taskId, runtime }) {
      ctx().heartbeat('starting agent: connecting to the sidecar');
      await startIfIdle(checkedId(taskId), runtime);
    },

    async pumpOutput({ taskId: raw, runtime, reportMs, idleTimeoutMs }) {
      const taskId = checkedId(raw);
      const c = ctx();
      let pump: OutputPump;
      // Again here: after a worker restart (the proxy's map is in memory) this is what runs first.
      await allowTaskRepo(d, taskId);
      try {
        pump = handoff.take(taskId) ?? (await OutputPump.open(d, taskId, runtime, reportMs, idleTimeoutMs));
      } catch (err) {
        throw classifyVmError(err, c.info.attempt);
      }
      // Every 5 s: often enough to notice a cancellation (suspend, stop) soon, and a dead
      // worker within the 30 s heartbeat timeout; a heartbeat writes no history.
      const beat = () => c.heartbeat(`running: output stored up to seq ${pump.stored}`);
      const timer = setInterval(beat, 5000);
      // The workflow records `suspending` or `terminating` in the task's row before it cancels
      // this activity: a heartbeat at that moment brings the cancellation back at once, rather
      // than at the next 5 s beat.
      const unwatch = d.inputBus.watch(taskId, { task: beat });
      beat();
      try {
        await Promise.race([pump.ended, c.cancelled]);
        return await pump.result();
      } catch (err) {
        // Cancelled (suspend, terminate): store what we have, then report the cancellation.
        if (err instanceof CancelledFailure) await pump.stop();
        throw err;
      } finally {
        clearInterval(timer);
        unwatch();
      }
    },

    async suspendVm({ taskId: raw }) {
      const taskId = checkedId(raw);
      const started = Date.now();
      await handoff.release(taskId);
      const { snapshotBytes } = await vmStep('suspending: writing the VM state', (progress) =>
        driver.suspend(taskId, progress),
      );
      metrics.vmSuspendSeconds.observe({ driver: driver.name }, (Date.now() - started) / 1000);
      // Typed while the pump was being stopped: the workflow resumes the task for it.
      const inputWaiting = await hasInput(d.pool, taskId);
      return { snapshotBytes, ms: Date.now() - started, inputWaiting };
    },

    async restoreVm({ taskId: raw }) {
      const taskId = checkedId(raw);
      const started = Date.now();
      await vmStep('restoring: loading the VM state', (progress, signal) =>
        driver.restore(taskId, progress, signal),
      );
      await allowTaskRepo(d, taskId);
      metrics.vmRestoreSeconds.observe({ driver: driver.name }, (Date.now() - started) / 1000);
      logger.info({ taskId, ms: Date.now() - started }, 'restored');
      return { ms: Date.now() - started };
    },

    async destroyVm({ taskId: raw }) {
      const taskId = checkedId(raw);
      ctx().heartbeat('destroying the VM');
      await handoff.release(taskId);
      await vmStep('destroying the VM', () => driver.destroy(taskId));
      forgetTaskRepo(d, taskId);
    },
  };
}
