/** Control activities: placement and task records. Run as local activities of the workflow worker. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ControlActivities } from '../common/activities.js';
import { recordDecision, recordQuestion } from '../common/db/conversation.js';
import { NoCapacity, placeOnHost } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { dropTaskLeftovers, idleLeftMs, updateTask } from '../common/db/tasks.js';
import { metrics } from '../common/metrics.js';
import type { TaskLimits } from '../common/task.js';

/**
 * PostgreSQL refusing the data itself (class 22: a value out of range; 23: a constraint) will
 * refuse it on every retry: that fails for good, with the reason. Anything else (the server
 * away, a dropped connection) is retried.
 */
async function refusedForGood<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^2[23]/.test(code))
      throw ApplicationFailure.create({
        type: 'BadRecord',
        message: `the database refused the record: ${(err as Error).message}`,
        nonRetryable: true,
      });
    throw err;
  }
}

export interface ControlDeps {
  pool: Pool;
  /** Placement sees a host as live for this long after its last heartbeat. */
  hostStaleSeconds: number;
  /** Wakes the task at the head of the placement queue (a slot may have freed). */
  wakeQueue(): Promise<void>;
}

function noCapacity(message: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'NoCapacity',
    message: `no room for the task: ${message}`,
    nonRetryable: true,
  });
}

export function createControlActivities(d: ControlDeps): ControlActivities {
  const { pool } = d;
  const place = async (taskId: string, limits: TaskLimits) => {
    try {
      return await placeOnHost(pool, taskId, d.hostStaleSeconds, {
        vcpus: limits.vcpus,
        memoryMib: limits.memoryMib,
        storageGb: limits.storageGb,
      });
    } catch (err) {
      if (err instanceof NoCapacity) throw noCapacity(err.message);
      throw err;
    }
  };
  return {
    // The first workflow's placement: no room is a failure (it has no queue to wait in).
    async placeTask({ taskId, limits }) {
      const r = await place(taskId, limits);
      if ('waiting' in r) throw noCapacity(r.waiting.why);
      return { hostId: r.placed.id };
    },
    async placeOrQueue({ taskId, limits }) {
      const r = await place(taskId, limits);
      if ('waiting' in r) return r;
      if (r.waitedSeconds > 0) {
        metrics.queueWaitSeconds.observe(r.waitedSeconds);
        // Placed from the queue: the next in line may fit too.
        await d.wakeQueue();
      }
      return { hostId: r.placed.id };
    },
    async recordTask({ taskId, patch }) {
      await refusedForGood(() => updateTask(pool, taskId, patch));
      if (patch.status === 'terminated' || patch.status === 'failed') {
        // Input nobody will read again; the output log stays (bounded) for GET /output.
        await dropTaskLeftovers(pool, taskId);
        // A slot is free: the task at the head of the queue tries again.
        await d.wakeQueue();
      }
    },

    async idleLeft({ taskId }) {
      return idleLeftMs(pool, taskId);
    },

    async recordQuestion({ taskId, question }) {
      await refusedForGood(() => recordQuestion(pool, taskId, question));
    },

    async recordDecision({ taskId, question, decision, message }) {
      await refusedForGood(() => recordDecision(pool, taskId, question, decision, message));
    },
  };
}
