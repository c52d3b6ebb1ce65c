/**
 * The messages a task workflow accepts. The task service (tasks/) and the control activities
 * import these to signal, update and query; the workflow implements them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PullRequestResult } from '../common/activities.js';
import type { AskedQuestion, Choice, DecisionView } from '../common/conversation.js';
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
 * The agent asks before a tool use (sent by the host's pump, again after a reconnect: the
 * workflow takes each id once). It waits in the workflow's state, visible in the Temporal UI,
 * until the owner answers, the tool is found always-allowed, or its deadline passes (denied).
 * Waiting is not agent activity: the task may suspend meanwhile.
 */
export const agentQuestionSignal = defineSignal<[AskedQuestion]>('agentQuestion');

/** The agent stopped waiting for an answer (it was interrupted): the question is settled as withdrawn. */
export const questionWithdrawnSignal = defineSignal<[{ id: string }]>('questionWithdrawn');

/**
 * The owner's (or an admin's) answer to a waiting question: `once`, `always` (this tool, for the
 * rest of the task) or `deny`. Refused with the reason when the question is unknown or already
 * settled; returns the decision once it is recorded. An answer to a suspended task resumes it.
 * The task service checks who may answer.
 */
export const answerUpdate = defineUpdate<DecisionView, [{ questionId: string; choice: Choice; by: string }]>(
  'answer',
);

/** Marks the histories in which the workflow first acted on a question. */
export const CONVERSATION_PATCH = 'conversation-questions';

/**
 * Pushes the task's branch and opens (or updates) its pull request (issue 20). A suspended task
 * is resumed first. Fails with the reason (no repository, the push refused, the forge's answer).
 */
export const openPullRequestUpdate = defineUpdate<PullRequestResult, [{ by?: string }]>('openPullRequest');

/**
 * A headless turn ended in a task whose pull request follows its turns (or a turn that asked for
 * it): push and open or update it (sent by the host's pump, again after a worker restart: the
 * workflow takes each turn once).
 */
export const pullRequestAfterTurnSignal = defineSignal<[{ n: number }]>('pullRequestAfterTurn');
