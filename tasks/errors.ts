/** What the task service refuses, and why: each message says what to fix. api/ and bot/ map the code. */
export type TaskErrorCode = 'invalid' | 'not_found' | 'forbidden' | 'conflict' | 'quota' | 'unavailable';

export class TaskError extends Error {
  constructor(
    readonly code: TaskErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TaskError';
  }
}
