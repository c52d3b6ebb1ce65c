/**
 * How Claude Code runs in a task: interactive in the terminal (the default), or headless — one
 * `claude -p` run whose stream-json events are rendered as readable lines, then a shell, so the
 * owner can look at what it did. In both, the working directory holds PROMPT.md and the files.
 *
 * The VM is the sandbox (its only way out is the egress proxy), so Claude Code runs without
 * permission prompts. Its first-run screens are answered in advance in ~/.claude.json.
 */
import { SUMMARY_OSC_END, SUMMARY_OSC_START } from './summary-scanner.js';

/** Claude Code needs a key to start; the egress proxy drops this one and adds the host's. */
export const PLACEHOLDER_KEY = 'sk-ant-lia-placeholder-the-egress-proxy-adds-the-key';
const PROMPT = 'Read PROMPT.md in the current directory and do what it asks.';

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

/** stream-json events → lines a person reads; the result also as an invisible OSC for the host. */
const RENDER = `
const w = (s) => process.stdout.write(String(s).replace(/\\n/g, '\\r\\n') + '\\r\\n');
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  let e;
  try { e = JSON.parse(line); } catch { if (line.trim()) w(line); return; }
  if (e.type === 'system' && e.subtype === 'init') w('\\u25cf Claude Code ' + e.claude_code_version + ' \\u00b7 ' + e.model);
  else if (e.type === 'assistant') {
    for (const b of (e.message && e.message.content) || []) {
      if (b.type === 'text') w(b.text);
      else if (b.type === 'tool_use') w('\\u2699 ' + b.name + ' ' + JSON.stringify(b.input).slice(0, 300));
    }
  } else if (e.type === 'user') {
    for (const b of (e.message && e.message.content) || []) {
      if (b.type !== 'tool_result') continue;
      const t = typeof b.content === 'string' ? b.content : (b.content || []).map((c) => c.text || '').join('');
      w('  \\u21b3 ' + String(t).split('\\n')[0].slice(0, 200));
    }
  } else if (e.type === 'result') {
    w((e.is_error ? '\\u2716 ' : '\\u2714 ') + 'finished after ' + e.num_turns + ' turns');
    const s = { result: String(e.result || '').slice(0, 20000), isError: !!e.is_error, numTurns: e.num_turns || 0, durationMs: e.duration_ms || 0 };
    process.stdout.write(${JSON.stringify(SUMMARY_OSC_START)} + Buffer.from(JSON.stringify(s)).toString('base64') + ${JSON.stringify(SUMMARY_OSC_END)});
  }
});`;

export function claudeCommand(headless: boolean, env: Record<string, string>) {
  const run = headless
    ? `claude -p "$LIA_PROMPT" --output-format stream-json --verbose --dangerously-skip-permissions </dev/null | node -e "$LIA_RENDER"; ` +
      `echo; echo 'Claude Code has finished; this is a shell in its working directory.'; exec bash --noprofile --norc -i`
    : 'exec claude --dangerously-skip-permissions "$LIA_PROMPT"';
  return {
    command: '/bin/sh',
    args: ['-c', `export HOME="\${HOME:-$PWD/.home}"; node -e "$LIA_SEED" && ${run}`],
    env: {
      ...env,
      ...CLAUDE_ENV,
      PS1: '\\W $ ',
      LIA_PROMPT: PROMPT,
      LIA_SEED: SEED_CONFIG,
      ...(headless ? { LIA_RENDER: RENDER } : {}),
    },
  };
}
