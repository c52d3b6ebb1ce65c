/**
 * The control side's maintenance: the host watchdog and the task sweeper. Started by Temporal
 * Schedules (workers/schedules.ts), so a pass runs on whichever control worker is up, and shows
 * in the Temporal UI.
 */
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { MaintenanceActivities, SweepReport, WatchReport } from '../common/activities.js';
import { markHostLost, openTasksOnLostHosts, staleHosts } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { closeTask, quietOpenTasks } from '../common/db/tasks.js';
import type { Logger } from '../common/logger.js';
import { hostQueue } from '../common/queues.js';
import type { TaskState } from '../common/task.js';
import { OutputLog } from '../output/log.js';
import { hostLostSignal } from '../workflows/definitions.js';

export interface MaintenanceDeps {
  pool: Pool;
  client: Client;
  namespace: string;
  logger: Logger;
  /** A host whose heartbeat is older than this, and whose queue nobody polls, is lost. */
  lostAfterSeconds: number;
  /** A row left unchanged this long is checked against its workflow. */
  sweepAfterSeconds?: number;
  /** An ended task's output is deleted this long after it ended. */
  endedOutputSeconds: number;
}

const { TaskQueueKind, TaskQueueType } = proto.temporal.api.enums.v1;

export function createMaintenanceActivities(d: MaintenanceDeps): MaintenanceActivities {
  /** Whether any worker polled the host's queue within the grace period. */
  async function polled(hostId: string): Promise<boolean> {
    const r = await d.client.workflowService.describeTaskQueue({
      namespace: d.namespace,
      taskQueue: { name: hostQueue(hostId), kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const since = Date.now() - d.lostAfterSeconds * 1000;
    return (r.pollers ?? []).some((p) => {
      const t = p.lastAccessTime;
      const ms = t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
      return ms > since;
    });
  }

  return {
    async watchHosts(): Promise<WatchReport> {
      const report: WatchReport = { lost: [], told: [] };
      for (const h of await staleHosts(d.pool, d.lostAfterSeconds)) {
        // A heartbeat can go stale while the host works (its database connection is down):
        // a host whose worker still polls its queue is not lost.
        if (await polled(h.id)) {
          d.logger.warn(
            { hostId: h.id, heartbeatAt: h.heartbeatAt },
            'watchdog: stale heartbeat, but the host polls',
          );
          continue;
        }
        const reason = `no heartbeat since ${h.heartbeatAt.toISOString()} and no worker polling ${hostQueue(h.id)} for ${d.lostAfterSeconds} s`;
        if (await markHostLost(d.pool, h.id, d.lostAfterSeconds, reason)) {
          d.logger.error({ hostId: h.id, reason }, 'watchdog: host lost; its tasks end');
          report.lost.push(h.id);
        }
      }
      // Every open task of a lost host is told, again on each pass until its row has ended.
      for (const t of await openTasksOnLostHosts(d.pool)) {
        Context.current().heartbeat(`telling ${t.taskId}`);
        try {
          await d.client.workflow
            .getHandle(t.taskId)
            .signal(hostLostSignal, { hostId: t.hostId, reason: t.reason });
          report.told.push(t.taskId);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          // No workflow: the sweeper closes the row.
        }
      }
      return report;
    },

    async sweepTasks(): Promise<SweepReport> {
      const report: SweepReport = { closed: [] };
      for (const row of await quietOpenTasks(d.pool, d.sweepAfterSeconds ?? 30)) {
        Context.current().heartbeat(`checking ${row.id}`);
        const verdict = await workflowVerdict(row.id);
        if (!verdict) continue;
        if (await closeTask(d.pool, row.id, verdict.status, verdict.reason)) {
          d.logger.warn(
            { taskId: row.id, ...verdict },
            'sweeper: closed the row of a task whose workflow is gone',
          );
          report.closed.push({ taskId: row.id, ...verdict });
        }
      }
      // Ended tasks' output, past its retention.
      report.outputChunksDropped = await new OutputLog(d.pool).dropEnded(d.endedOutputSeconds);
      return report;
    },
  };

  /** How a row whose workflow is closed or missing ends; undefined while the workflow runs. */
  async function workflowVerdict(
    taskId: string,
  ): Promise<{ status: 'terminated' | 'failed'; reason: string } | undefined> {
    const handle = d.client.workflow.getHandle(taskId);
    let status: string;
    try {
      status = (await handle.describe()).status.name;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      return {
        status: 'failed',
        reason: 'its workflow does not exist (never started, or deleted from Temporal)',
      };
    }
    switch (status) {
      case 'RUNNING':
      case 'PAUSED':
      case 'CONTINUED_AS_NEW':
        return undefined;
      case 'COMPLETED': {
        // It ended normally, but its last record did not land: take its own answer.
        const s = (await handle.result()) as TaskState;
        return s.status === 'failed'
          ? { status: 'failed', reason: s.error ?? 'failed' }
          : { status: 'terminated', reason: s.error ?? 'ended' };
      }
      case 'TERMINATED':
        return {
          status: 'terminated',
          reason: `its workflow was terminated in Temporal (${await terminateReason(taskId)}); the host removes its VM`,
        };
      default:
        return { status: 'failed', reason: `its workflow ended as ${status.toLowerCase()}` };
    }
  }

  /** The reason an operator gave to `temporal workflow terminate`, from the last history event. */
  async function terminateReason(taskId: string): Promise<string> {
    try {
      const r = await d.client.workflowService.getWorkflowExecutionHistoryReverse({
        namespace: d.namespace,
        execution: { workflowId: taskId },
        maximumPageSize: 1,
      });
      const reason = r.history?.events?.[0]?.workflowExecutionTerminatedEventAttributes?.reason;
      return reason ? `reason: ${reason.slice(0, 200)}` : 'no reason given';
    } catch {
      return 'no reason known';
    }
  }
}
