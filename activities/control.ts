/** Control activities: placement and task records. Run as local activities of the workflow worker. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ControlActivities } from '../common/activities.js';
import { NoCapacity, placeOnHost } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { dropTaskLeftovers, updateTask } from '../common/db/tasks.js';

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

export function createControlActivities(pool: Pool, opts: { hostStaleSeconds: number }): ControlActivities {
  return {
    async placeTask({ taskId }) {
      try {
        const host = await placeOnHost(pool, taskId, opts.hostStaleSeconds);
        return { hostId: host.id };
      } catch (err) {
        if (err instanceof NoCapacity) {
          throw ApplicationFailure.create({
            type: 'NoCapacity',
            message: `no room for the task: ${err.message}`,
            nonRetryable: true,
          });
        }
        throw err;
      }
    },
    async recordTask({ taskId, patch }) {
      await refusedForGood(() => updateTask(pool, taskId, patch));
      // Input nobody will read again; the output log stays (bounded) for GET /output.
      if (patch.status === 'terminated' || patch.status === 'failed') await dropTaskLeftovers(pool, taskId);
    },
  };
}
