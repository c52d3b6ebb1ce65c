/**
 * The Temporal Schedules of Lia's maintenance: the host watchdog and the task sweeper, each a
 * workflow on the control queue. Made (or brought up to date) when a control worker starts; an
 * operator sees, pauses or triggers them in the Temporal UI like any schedule.
 */
import { type Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import { CONTROL_QUEUE } from '../common/queues.js';

export const SCHEDULES = {
  'lia-host-watchdog': {
    workflowType: 'hostWatchdog',
    note: 'declares lost the hosts gone past the grace period; their tasks fail',
  },
  'lia-task-sweeper': {
    workflowType: 'taskSweeper',
    note: 'closes the rows of tasks whose workflow is closed or missing',
  },
} as const;

export async function ensureSchedules(client: Client, everySeconds: number): Promise<void> {
  for (const [scheduleId, s] of Object.entries(SCHEDULES)) {
    const options = {
      scheduleId,
      spec: { intervals: [{ every: `${everySeconds} seconds` }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: s.workflowType,
        taskQueue: CONTROL_QUEUE,
        args: [],
        workflowId: scheduleId,
      },
      // A slow pass is followed by the next, never run beside it.
      policies: {
        overlap: ScheduleOverlapPolicy.SKIP,
        catchupWindow: `${Math.max(60, everySeconds * 2)} seconds`,
      },
      state: { note: s.note },
    };
    try {
      await client.schedule.create(options);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      await client.schedule.getHandle(scheduleId).update((prev) => ({
        ...prev,
        spec: options.spec,
        action: options.action,
        policies: options.policies,
      }));
    }
  }
}
