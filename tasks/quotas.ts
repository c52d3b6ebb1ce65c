/** Per-user quotas: what a refusal says (the counting is done where the rows are written). */
import { TaskError } from './errors.js';

export function liveQuotaError(limit: number): TaskError {
  return new TaskError(
    'quota',
    `you already have ${limit} live tasks (the limit); stop one with /stop or DELETE before starting another`,
  );
}

export function runningQuotaError(limit: number, doing: string): TaskError {
  return new TaskError(
    'quota',
    `you already have ${limit} running task${limit === 1 ? '' : 's'} (the limit) and cannot ${doing}; ` +
      'stop one with /stop or DELETE, or wait until one is suspended when idle',
  );
}
