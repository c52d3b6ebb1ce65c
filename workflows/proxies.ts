/**
 * How the task workflow calls its activities. Errors are classified where they happen: an
 * activity fails for good only with a non-retryable error (a VM error that cannot succeed, a
 * record the database refuses, no room); everything else — PostgreSQL or Temporal away, a busy
 * socket, a worker restart — is retried without an attempt cap, and the Temporal UI shows the
 * pending activity with its attempts and last failure.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ControlActivities, HostActivities } from '../common/activities.js';
import { hostQueue } from '../common/queues.js';

/** Error types an activity throws when retrying cannot help. */
export const FINAL_ERRORS = ['VmError', 'NoCapacity', 'BadRecord', 'GuestProtocolError'];

const forever = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  nonRetryableErrorTypes: FINAL_ERRORS,
} as const;

/** Placement and records: local activities of the control worker (PostgreSQL only). */
export const control = proxyLocalActivities<ControlActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { ...forever, initialInterval: '200 ms', maximumInterval: '30 seconds' },
});

/**
 * Every VM activity of a task runs on the queue of the host that holds its VM. There is no
 * schedule-to-start limit: a host that is away (a deploy, a reboot) finds its work waiting when
 * it is back, and a host that is gone for good is declared lost by the watchdog, which tells
 * its tasks (hostLostSignal). `summary` names the step in the Temporal UI.
 */
export function onHost(hostId: string, summary: string) {
  const taskQueue = hostQueue(hostId);
  return {
    /** Boot, suspend, restore: cancellation waits until the driver has stopped. */
    lifecycle: proxyActivities<HostActivities>({
      taskQueue,
      summary,
      startToCloseTimeout: '20 minutes',
      heartbeatTimeout: '1 minute',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: forever,
    }),
    /**
     * The output pump runs as long as the VM does; its heartbeat (every 5 s) carries cancellation.
     * Retried every few seconds at most: each host worker restart is an attempt, and the
     * backoff of the tenth must not keep a task's output waiting for a minute.
     */
    pump: proxyActivities<HostActivities>({
      taskQueue,
      summary,
      startToCloseTimeout: '3650 days',
      heartbeatTimeout: '30 seconds',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { ...forever, maximumInterval: '2 seconds' },
    }),
    /** Pushing a branch and opening its pull request: a few tries, then the reason. */
    forge: proxyActivities<HostActivities>({
      taskQueue,
      summary,
      startToCloseTimeout: '15 minutes',
      heartbeatTimeout: '1 minute',
      retry: { ...forever, maximumAttempts: 5 },
    }),
    cleanup: proxyActivities<HostActivities>({
      taskQueue,
      summary,
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: '1 minute',
      retry: forever,
    }),
  };
}
