/**
 * The control worker: runs task workflows and, as local activities, placement and records; and
 * the maintenance workflows its Temporal Schedules start (host watchdog, task sweeper).
 * Stateless: run as many as you like.
 */
import { Client } from '@temporalio/client';
import { type NativeConnection, Worker } from '@temporalio/worker';
import { createControlActivities } from '../activities/control.js';
import { createMaintenanceActivities } from '../activities/maintenance.js';
import { queueWaker } from '../activities/queue.js';
import type { Config } from '../common/config.js';
import type { Pool } from '../common/db/pool.js';
import type { Logger } from '../common/logger.js';
import { CONTROL_QUEUE } from '../common/queues.js';
import { ensureSchedules } from './schedules.js';
import { connectWorkerTemporal } from './temporal-connection.js';

export interface ControlWorkerOptions {
  temporalAddress: string;
  config: Config;
  logger: Logger;
  pool: Pool;
  workflowBundlePath: string;
  /** A connection to share with this process's Temporal client (eager workflow start); else its own. */
  connection?: NativeConnection;
}

export async function createControlWorker(o: ControlWorkerOptions): Promise<Worker> {
  const { config } = o;
  const namespace = config.temporal.namespace;
  const connection = o.connection ?? (await connectWorkerTemporal(config, o.temporalAddress));
  const client = new Client({ connection, namespace });
  await ensureSchedules(client, config.control.maintenance_seconds);
  return Worker.create({
    connection,
    namespace,
    taskQueue: CONTROL_QUEUE,
    workflowBundle: { codePath: o.workflowBundlePath },
    activities: {
      // Placement sees a host as live for four heartbeats; past that it takes no new tasks.
      ...createControlActivities({
        pool: o.pool,
        hostStaleSeconds: config.host.heartbeat_seconds * 4,
        wakeQueue: queueWaker(o.pool, client),
      }),
      ...createMaintenanceActivities({
        pool: o.pool,
        client,
        namespace,
        logger: o.logger,
        lostAfterSeconds: config.host.lost_after_seconds,
        endedOutputSeconds: config.output.ended_retention_hours * 3600,
      }),
    },
  });
}
