/**
 * The messages a task workflow accepts. The task service (tasks/) and the control activities
 * import these to signal, update and query; the workflow implements them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PullRequestResult } from '../common/activities.js';
import type { TaskState } from '../common/task.js';

/** Lia's terminate: cleanup runs inside the workflow (never Temporal's own terminate). */
export const terminateSignal = defineSignal<[{ reason?: string; by?: string }]>('terminate');

/**
 * Agent I/O happened (sent by the host's output pump, at most once per report interval): moves
 * the idle deadline. It does not wake the workflow's loop: the idle timer, when it fires, reads
 * the latest deadline and re-arms there.
 */
export const agentActivitySignal = defineSignal<[]>('agentActivity');

/** The host watchdog declared the task's host lost: the task ends `failed` with the reason. */
export const hostLostSignal = defineSignal<[{ hostId: string; reason: string }]>('hostLost');

/**
 * Resume a suspended task (or one being suspended: it resumes once the snapshot is written).
 * Refused with the reason when the task is in another state; fails with the reason when the
 * restore fails (the task then stays suspended, its snapshot kept) or the task ends first.
 */
export const resumeUpdate = defineUpdate<TaskState, [{ by?: string }]>('resume');

export const stateQuery = defineQuery<TaskState>('state');

export const WORKFLOW_TYPE = 'agentTask';

/** The patch that switches a task's runs to the entity workflow (workflows/task.ts). */
export const ENTITY_PATCH = 'task-entity-v2';

/** Room may have come (a slot freed, a host joined): a task waiting in the queue tries again. */
export const placementWakeSignal = defineSignal<[]>('placementWake');

/**
 * Pushes the task's branch and opens (or updates) its pull request (issue 20). A suspended task
 * is resumed first. Fails with the reason (no repository, the push refused, the forge's answer).
 */
export const openPullRequestUpdate = defineUpdate<PullRequestResult, [{ by?: string }]>('openPullRequest');
