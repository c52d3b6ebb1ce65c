/** Temporal task queues. Pure: the workflow builds a host's queue name from here too. */

/** Task workflows and the control activities (placement, records, sweeps). */
export const CONTROL_QUEUE = 'lia-control';

/** The VM activities of one KVM host: every activity of a task placed there runs on it. */
export function hostQueue(hostId: string): string {
  return `lia-host-${hostId}`;
}
