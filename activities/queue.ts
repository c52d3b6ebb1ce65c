/** Waking the placement queue's head when room may have come: a slot freed, a host joined or was activated. */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { queueHead } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { placementWakeSignal } from '../workflows/definitions.js';

export function queueWaker(pool: Pool, client: Client): () => Promise<void> {
  return async () => {
    const head = await queueHead(pool);
    if (!head) return;
    await client.workflow
      .getHandle(head)
      .signal(placementWakeSignal)
      .catch((err) => {
        // Its workflow is gone: the sweeper closes the row, and the next wake finds the next task.
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      });
  };
}
