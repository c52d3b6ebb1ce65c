/**
 * The task workflow's entry point. Runs started before the entity rewrite replay through the
 * frozen first version; every new run (a new task, or an old one continuing as new) is the
 * entity of workflows/task.ts. `patched` records which in the history, so a replay always
 * takes the path the run first took.
 */
import { patched } from '@temporalio/workflow';
import type { CarriedState, TaskInput, TaskState } from '../common/task.js';
import { ENTITY_PATCH } from './definitions.js';
import { agentTaskV1 } from './legacy/agent-task-v1.js';
import { runTask } from './task.js';

export async function agentTask(input: TaskInput, carried?: CarriedState): Promise<TaskState> {
  if (!patched(ENTITY_PATCH)) return agentTaskV1(input, carried);
  return runTask(input, carried);
}
