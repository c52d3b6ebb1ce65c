/**
 * Which tool uses ask the task's owner, by permission mode. No imports: the guest's permission
 * hook is bundled with it (vm/guest/), and the workflow and the task service read it too.
 */

/**
 * `ask`: every tool that can change something asks the owner first (reading never asks);
 * `edits`: file edits go ahead, everything else asks; `auto`: nothing asks (the VM is the
 * sandbox, as before permission modes existed).
 */
export const PERMISSION_MODES = ['ask', 'edits', 'auto'] as const;
export type PermissionMode = (typeof PERMISSION_MODES)[number];

export const PERMISSION_MODE_HELP: Record<PermissionMode, string> = {
  ask: 'asks before every command or edit (reading never asks)',
  edits: 'file edits go ahead; commands and the rest ask',
  auto: 'nothing asks: the agent acts freely inside its VM',
};

/** Claude Code's tools that only read or plan: they never ask, in any mode. */
export const READ_ONLY_TOOLS: readonly string[] = [
  'Read',
  'Glob',
  'Grep',
  'LS',
  'NotebookRead',
  'TodoRead',
  'TodoWrite',
  'ToolSearch',
  'ListAgents',
  'BashOutput',
  'TaskOutput',
  'ExitPlanMode',
  'EnterPlanMode',
  // A subagent's own tool calls go through the same hook, so starting one asks nothing.
  'Task',
];

/** Claude Code's tools that edit files: they go ahead without asking in mode `edits`. */
export const EDIT_TOOLS: readonly string[] = ['Edit', 'MultiEdit', 'Write', 'NotebookEdit'];

/** Whether a tool use waits for the owner's answer in this mode (tools not named here ask). */
export function needsAnswer(mode: PermissionMode, tool: string): boolean {
  if (mode === 'auto' || READ_ONLY_TOOLS.includes(tool)) return false;
  if (mode === 'edits' && EDIT_TOOLS.includes(tool)) return false;
  return true;
}
