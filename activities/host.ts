/**
 * Host activities: the VM lifecycle and the output pump, run by the worker of the host that
 * holds the VM. Everything here is idempotent or resumable, because Temporal retries it.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { HostActivities } from '../common/activities.js';
import { getTask } from '../common/db/tasks.js';
import { activityReportInterval, type Runtime } from '../common/task.js';
import { VmError } from '../vm/driver.js';
import type { HostActivityDeps } from './deps.js';
import { OutputPump } from './output-pump.js';
import type { PumpHandoff } from './pump-handoff.js';
import { connectSidecar, HELLO_TIMEOUT_MS, sendStart } from './sidecar-session.js';

export type { HostActivityDeps } from './deps.js';

function vmFailure(err: unknown): never {
  if (err instanceof VmError && !err.retryable) {
    throw ApplicationFailure.create({ type: 'VmError', message: err.message, nonRetryable: true });
  }
  throw err;
}

/**
 * @param handoff pumps bootVm started, for pumpOutput to take over (the worker stops what is
 *   left at shutdown).
 */
export function createHostActivities(d: HostActivityDeps, handoff: PumpHandoff<OutputPump>): HostActivities {
  const { driver, logger } = d;
  const heartbeat = (what: string) => Context.current().heartbeat(what);

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

  return {
    async bootVm({ taskId, limits }) {
      const started = Date.now();
      heartbeat(`booting: ${driver.name} (${driver.acceleration})`);
      try {
        await driver.boot(
          { taskId, vcpus: limits.vcpus, memoryMib: limits.memoryMib, storageGb: limits.storageGb },
          heartbeat,
        );
      } catch (err) {
        vmFailure(err);
      }
      // Start the agent and its pump now: its first output reaches the browser while the
      // workflow records the task as running; the workflow's pumpOutput takes the pump over.
      const row = await getTask(d.pool, taskId);
      if (row) {
        heartbeat('booting: starting the agent');
        // The same interval the workflow gives pumpOutput (both derive it from the idle timeout).
        const reportMs = activityReportInterval(limits.idleTimeoutMs);
        handoff.offer(await OutputPump.open(d, taskId, row.runtime, reportMs));
      }
      return { driver: driver.name, acceleration: driver.acceleration, bootMs: Date.now() - started };
    },

    // Workflows recorded before the pump started the agent itself still schedule this.
    async startAgent({ taskId, runtime }) {
      heartbeat('starting agent: connecting to the sidecar');
      await startIfIdle(taskId, runtime);
    },

    async pumpOutput({ taskId, runtime, reportMs }) {
      const ctx = Context.current();
      const pump = handoff.take(taskId) ?? (await OutputPump.open(d, taskId, runtime, reportMs));
      const beat = setInterval(() => ctx.heartbeat(`running: output stored up to seq ${pump.stored}`), 1000);
      ctx.heartbeat(`running: output stored up to seq ${pump.stored}`);
      try {
        await Promise.race([pump.ended, ctx.cancelled]);
        return await pump.result();
      } catch (err) {
        // Cancelled (suspend, terminate): store what we have, then report the cancellation.
        if (err instanceof CancelledFailure) await pump.stop();
        throw err;
      } finally {
        clearInterval(beat);
      }
    },

    async suspendVm({ taskId }) {
      const started = Date.now();
      await handoff.release(taskId);
      heartbeat('suspending: writing the VM state');
      try {
        const { snapshotBytes } = await driver.suspend(taskId, heartbeat);
        return { snapshotBytes, ms: Date.now() - started };
      } catch (err) {
        vmFailure(err);
      }
    },

    async restoreVm({ taskId }) {
      const started = Date.now();
      heartbeat('restoring: loading the VM state');
      try {
        await driver.restore(taskId, heartbeat);
      } catch (err) {
        vmFailure(err);
      }
      logger.info({ taskId, ms: Date.now() - started }, 'restored');
      return { ms: Date.now() - started };
    },

    async destroyVm({ taskId }) {
      heartbeat('destroying the VM');
      await handoff.release(taskId);
      await driver.destroy(taskId);
    },
  };
}
