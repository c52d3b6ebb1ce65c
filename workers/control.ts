/**
 * The control worker: runs task workflows and, as local activities, placement and records.
 * Stateless: run as many as you like.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createControlActivities } from '../activities/control.js';
import type { Pool } from '../common/db/pool.js';
import { CONTROL_QUEUE } from '../common/queues.js';

export interface ControlWorkerOptions {
  temporalAddress: string;
  namespace: string;
  pool: Pool;
  workflowBundlePath: string;
  hostStaleSeconds: number;
  /** A connection to share with this process's Temporal client (eager workflow start); else its own. */
  connection?: NativeConnection;
}

export async function createControlWorker(o: ControlWorkerOptions): Promise<Worker> {
  const connection = o.connection ?? (await NativeConnection.connect({ address: o.temporalAddress }));
  return Worker.create({
    connection,
    namespace: o.namespace,
    taskQueue: CONTROL_QUEUE,
    workflowBundle: { codePath: o.workflowBundlePath },
    activities: createControlActivities(o.pool, { hostStaleSeconds: o.hostStaleSeconds }),
  });
}
