/**
 * How Claude Code runs in a task: interactive in the terminal (the default), or headless — a
 * conversation driver in the guest (vm/guest/conversation-driver.ts) that runs the prompt as the
 * first turn of a Claude Code session and each follow-up the owner sends as the next turn of the
 * same session, its events rendered as readable lines. In both, the working directory holds
 * PROMPT.md and the files.
 *
 * Permissions: the VM is the sandbox, so Claude Code's own prompts are off
 * (--dangerously-skip-permissions); in the modes that ask (`ask`, `edits`) a PreToolUse hook of
 * Lia's (vm/guest/permission-hook.ts) asks the task's owner before each tool use the mode does
 * not let through, and waits for the answer. The hook comes in --settings, which the agent's own
 * settings files can add to but not replace. Claude Code's first-run screens are answered in
 * advance in ~/.claude.json.
 */
import { claudeSessionId } from '../common/claude-session.js';
import type { PermissionMode } from '../common/permission-policy.js';
import { guestScript } from '../vm/guest/build.js';

/** Claude Code needs a key to start; the egress proxy drops this one and adds the host's. */
export const PLACEHOLDER_KEY = 'sk-ant-lia-placeholder-the-egress-proxy-adds-the-key';
const PROMPT = 'Read PROMPT.md in the current directory and do what it asks.';
/**
 * The hook's timeout, in seconds: longer than any question may wait (Claude Code runs the tool
 * when a hook times out). Below 2^31 ms, past which a JavaScript timer fires at once.
 */
export const HOOK_TIMEOUT_SECONDS = 2_000_000;

export const CLAUDE_ENV = {
  ANTHROPIC_API_KEY: PLACEHOLDER_KEY,
  IS_SANDBOX: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
};

/** Writes ~/.claude.json (unless there is one): onboarding done, this folder trusted, the key approved. */
const SEED_CONFIG = `
const fs = require('fs'), path = require('path');
const file = path.join(process.env.HOME, '.claude.json');
if (!fs.existsSync(file)) {
  fs.mkdirSync(process.env.HOME, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({
    hasCompletedOnboarding: true,
    theme: 'dark',
    bypassPermissionsModeAccepted: true,
    customApiKeyResponses: { approved: [process.env.ANTHROPIC_API_KEY.slice(-20)], rejected: [] },
    projects: { [process.cwd()]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true } },
  }));
}`;

/** Claude Code's settings that put Lia's permission hook before every tool use. */
export function hookSettings(): string {
  return JSON.stringify({
    hooks: {
      PreToolUse: [
        {
          matcher: '*',
          hooks: [{ type: 'command', command: 'node -e "$LIA_HOOK"', timeout: HOOK_TIMEOUT_SECONDS }],
        },
      ],
    },
  });
}

export function claudeCommand(
  o: { headless: boolean; mode: PermissionMode; taskId: string },
  env: Record<string, string>,
) {
  const asks = o.mode !== 'auto';
  const run = o.headless
    ? 'exec node -e "$LIA_DRIVER"'
    : `exec claude --dangerously-skip-permissions${asks ? ' --settings "$LIA_CLAUDE_SETTINGS"' : ''} "$LIA_PROMPT"`;
  return {
    command: '/bin/sh',
    args: ['-c', `export HOME="\${HOME:-$PWD/.home}"; node -e "$LIA_SEED" && ${run}`],
    env: {
      ...env,
      ...CLAUDE_ENV,
      PS1: '\\W $ ',
      LIA_PROMPT: PROMPT,
      LIA_SEED: SEED_CONFIG,
      LIA_PERMISSION_MODE: o.mode,
      ...(asks ? { LIA_HOOK: guestScript('hook'), LIA_CLAUDE_SETTINGS: hookSettings() } : {}),
      ...(o.headless ? { LIA_DRIVER: guestScript('driver'), LIA_SESSION_ID: claudeSessionId(o.taskId) } : {}),
    },
  };
}
