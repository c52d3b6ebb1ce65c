/**
 * A host worker that starts again (a deploy, a crash) finds its VMs running and their output
 * pumps still "started" in Temporal, held by the worker that died: Temporal would notice only at
 * the pump's heartbeat timeout (30 s), and the task's output would wait that long. The new worker
 * fails those attempts at once (a retryable failure), so Temporal gives the pump to it now: the
 * sidecars kept every byte, and the pump resumes from the last stored seq.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { Pool } from '../common/db/pool.js';
import { taskStatus } from '../common/db/tasks.js';
import type { Logger } from '../common/logger.js';
import { TASK_ID_RE } from '../common/task.js';

const STARTED = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** Returns the tasks whose pump was handed over. */
export async function takeOverPumps(o: {
  client: Client;
  pool: Pool;
  logger: Logger;
  /** The VMs on this host. */
  taskIds: string[];
  /** This worker's identity: an attempt it holds itself is left alone. */
  identity: string;
}): Promise<string[]> {
  const taken: string[] = [];
  for (const taskId of o.taskIds) {
    if (!TASK_ID_RE.test(taskId)) continue;
    try {
      if ((await taskStatus(o.pool, taskId)) !== 'running') continue;
      const d = await o.client.workflow.getHandle(taskId).describe();
      for (const a of d.raw.pendingActivities ?? []) {
        if (a.activityType?.name !== 'pumpOutput' || a.state !== STARTED || !a.activityId) continue;
        if (a.lastWorkerIdentity === o.identity) continue;
        await o.client.activity.fail(
          { workflowId: taskId, runId: d.runId, activityId: a.activityId },
          ApplicationFailure.retryable(
            `host worker ${a.lastWorkerIdentity || '(unknown)'} is gone; ${o.identity} takes the pump over`,
            'PumpWorkerGone',
          ),
        );
        taken.push(taskId);
      }
    } catch (err) {
      // The attempt ended meanwhile, or the workflow is gone: the heartbeat timeout remains.
      if (!(err instanceof WorkflowNotFoundError))
        o.logger.warn({ taskId, err: (err as Error).message }, 'could not take over the output pump');
    }
  }
  if (taken.length) o.logger.info({ tasks: taken }, 'took over the output pumps of the worker before');
  return taken;
}
