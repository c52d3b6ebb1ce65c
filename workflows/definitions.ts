/**
 * The messages a task workflow accepts. The API and the bot import these to signal, update and
 * query; the workflow implements them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { TaskState } from '../common/task.js';

/** Lia's terminate: cleanup runs inside the workflow (never Temporal's own terminate). */
export const terminateSignal = defineSignal<[{ reason?: string; by?: string }]>('terminate');

/** Agent I/O happened (sent by the host's output pump, throttled): resets the idle timer. */
export const agentActivitySignal = defineSignal<[]>('agentActivity');

/** Resume a suspended task. Refused (with the reason) when the task is not suspended. */
export const resumeUpdate = defineUpdate<TaskState, [{ by?: string }]>('resume');

export const stateQuery = defineQuery<TaskState>('state');

export const WORKFLOW_TYPE = 'agentTask';
