/** What the sidecar runs for each runtime. The environment is built here, from nothing. */
import type { Config } from '../common/config.js';
import type { PermissionMode } from '../common/permission-policy.js';
import type { Runtime } from '../common/task.js';
import { claudeCommand } from './claude-runtime.js';

export interface AgentCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

const BASE_ENV = {
  TERM: 'xterm-256color',
  LANG: 'C.UTF-8',
  PATH: '/usr/local/bin:/usr/bin:/bin',
};

/**
 * @param mode Claude Code's permission mode (a task from before modes has none: it ran without
 *   asking, and goes on so).
 */
export function agentCommand(
  runtime: Runtime,
  config: Config,
  taskId: string,
  guestEnv: Record<string, string> = {},
  mode: PermissionMode | null = null,
): AgentCommand {
  const env: Record<string, string> = { ...BASE_ENV, ...guestEnv, LIA_TASK_ID: taskId };
  if (runtime === 'shell') {
    return { command: 'bash', args: ['--noprofile', '--norc', '-i'], env: { ...env, PS1: '\\W $ ' } };
  }
  if (!config.claude.api_key) {
    const message =
      'Lia: this host has no model API key (LIA__CLAUDE__API_KEY is unset), so Claude Code cannot run. ' +
      'Ask the operator to configure it, then start a new task.';
    // The message goes to the terminal and, through the exit, to the task's status.
    return { command: '/bin/sh', args: ['-c', 'printf "%s\\r\\n" "$0" >&2; exit 3', message], env };
  }
  return claudeCommand({ headless: runtime === 'claude-headless', mode: mode ?? 'auto', taskId }, env);
}

/** Exit code 3 from the no-key command above: the status line says why. */
export function describeAgentExit(runtime: Runtime, config: Config, code: number | null): string | undefined {
  if (runtime !== 'shell' && !config.claude.api_key && code === 3) {
    return 'Claude Code cannot run: the host has no model API key (LIA__CLAUDE__API_KEY)';
  }
  return undefined;
}
