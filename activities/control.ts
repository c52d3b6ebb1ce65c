/** Control activities: placement and task records. Run as local activities of the workflow worker. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ControlActivities } from '../common/activities.js';
import { NoCapacity, placeOnHost } from '../common/db/hosts.js';
import { dropInput } from '../common/db/input.js';
import type { Pool } from '../common/db/pool.js';
import { updateTask } from '../common/db/tasks.js';

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
      await updateTask(pool, taskId, patch);
      if (patch.status === 'terminated' || patch.status === 'failed') {
        // Input nobody will read again; the output log stays (bounded) for GET /output.
        await dropInput(pool, taskId);
        await pool.query('DELETE FROM task_files WHERE task_id = $1', [taskId]);
      }
    },
  };
}
