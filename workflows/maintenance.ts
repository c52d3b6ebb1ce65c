/**
 * Maintenance, started by Temporal Schedules (workers/schedules.ts) so each pass shows in the
 * Temporal UI: the host watchdog and the task sweeper. Each is one activity; a pass that fails
 * is simply followed by the next.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { MaintenanceActivities, SweepReport, WatchReport } from '../common/activities.js';

const maintenance = proxyActivities<MaintenanceActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

/** Marks lost the hosts that are gone past the grace period, and tells their tasks. */
export async function hostWatchdog(): Promise<WatchReport> {
  return maintenance.watchHosts();
}

/** Closes the rows of tasks whose workflow is closed or missing. */
export async function taskSweeper(): Promise<SweepReport> {
  return maintenance.sweepTasks();
}
