// The workflow bundle's entry point: everything exported here is a workflow type.
export { agentTask } from './agentTask.js';
export { hostWatchdog, taskSweeper } from './maintenance.js';
