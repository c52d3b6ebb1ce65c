/**
 * The NOTIFY channels between Lia's processes, and their payloads: written by the statement that
 * changes the rows (so a notification never announces an uncommitted change), read by the task
 * bus (output/bus.ts). A notification only says "look again"; readers re-read from their own
 * cursor, so a lost or doubled one costs a query, never a byte.
 */
export const CHANNELS = {
  /** payload: `<taskId>:<last seq written>` — new output chunks */
  output: 'lia_output',
  /** payload: `<taskId>` — new rows in task_input */
  input: 'lia_input',
  /** payload: `<taskId>` — the task's row changed (status, error, usage, idle deadline) */
  task: 'lia_task',
  /** payload: `<taskId>` — someone asks for a fresh diff of the task's working tree (task_diffs) */
  diff: 'lia_diff',
} as const;

export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/** SQL for the output payload, given the parameters holding the task id and the last seq. */
export const outputPayloadSql = (taskIdParam: string, seqParam: string) =>
  `${taskIdParam} || ':' || ${seqParam}::text`;

export type Notification =
  | { channel: typeof CHANNELS.output; taskId: string; seq: number }
  | { channel: typeof CHANNELS.input | typeof CHANNELS.task | typeof CHANNELS.diff; taskId: string };

/** A notification as the bus receives it, or undefined when it is not one of ours. */
export function parseNotification(channel: string, payload: string | undefined): Notification | undefined {
  if (!payload) return undefined;
  if (channel === CHANNELS.output) {
    const i = payload.lastIndexOf(':');
    const seq = Number(payload.slice(i + 1));
    if (i <= 0 || !Number.isSafeInteger(seq)) return undefined;
    return { channel, taskId: payload.slice(0, i), seq };
  }
  if (channel === CHANNELS.input || channel === CHANNELS.task || channel === CHANNELS.diff)
    return { channel, taskId: payload };
  return undefined;
}
