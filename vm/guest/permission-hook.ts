/**
 * Claude Code's PreToolUse hook in a task whose permission mode asks (`ask`, `edits`): Claude
 * Code runs it before every tool use, with the use on stdin. Tools the mode lets through go ahead
 * (exit 0, nothing said); every other use is asked of the task's owner through the sidecar's door
 * and waits — for hours if need be, frozen with the VM while it is suspended — for the answer,
 * which it hands back as the hook's decision.
 *
 * It fails closed: Claude Code runs the tool when a hook crashes or times out, so every error here
 * exits 2 (block, the reason to the model), and the hook's timeout in the settings is weeks.
 *
 *   stdin: {"tool_name":"Bash","tool_input":{…},"tool_use_id":"…",…}
 *   stdout: {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"|"deny",…}}
 *
 * Bundled (vm/guest/build.ts) and run as `node -e "$LIA_HOOK"`; LIA_PERMISSION_MODE and
 * LIA_AGENT_SOCKET come from the agent's environment.
 */
import net from 'node:net';
import { needsAnswer, PERMISSION_MODES, type PermissionMode } from '../../common/permission-policy.js';
import { AGENT_SOCKET_ENV, type AgentEvent, LineReader, line } from './agent-protocol.js';

const MAX_STDIN_BYTES = 64 * 1024 * 1024;

function block(why: string): never {
  process.stderr.write(`Lia: ${why}`);
  process.exit(2);
}

function decide(decision: 'allow' | 'deny', reason: string): void {
  process.stdout.write(
    JSON.stringify({
      hookSpecificOutput: {
        hookEventName: 'PreToolUse',
        permissionDecision: decision,
        permissionDecisionReason: reason,
      },
    }),
  );
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_STDIN_BYTES) block('the tool use is too large to ask about; it was not run.');
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

function ask(socket: string, tool: string, input: Record<string, unknown>, toolUseId?: string) {
  return new Promise<Extract<AgentEvent, { type: 'answer' }>>((resolve, reject) => {
    const conn = net.createConnection(socket);
    const reader = new LineReader();
    conn.on('connect', () => conn.write(line({ type: 'ask', tool, input, toolUseId })));
    conn.on('data', (chunk: Buffer) => {
      try {
        for (const e of reader.push(chunk) as AgentEvent[]) if (e?.type === 'answer') resolve(e);
      } catch (err) {
        reject(err);
      }
    });
    conn.on('error', reject);
    conn.on('close', () => reject(new Error("the sidecar closed the connection before the owner's answer")));
  });
}

async function main(): Promise<void> {
  const mode = process.env.LIA_PERMISSION_MODE as PermissionMode;
  if (!PERMISSION_MODES.includes(mode))
    block(`unknown permission mode ${JSON.stringify(mode)}; nothing runs.`);
  let use: { tool_name?: unknown; tool_input?: unknown; tool_use_id?: unknown };
  try {
    use = JSON.parse(await readStdin());
  } catch {
    block('the tool use could not be read; it was not run.');
  }
  const tool = typeof use.tool_name === 'string' ? use.tool_name : '';
  if (!tool) block('the tool use names no tool; it was not run.');
  if (!needsAnswer(mode, tool)) return;
  const socket = process.env[AGENT_SOCKET_ENV];
  if (!socket) block("no way to ask the task's owner (LIA_AGENT_SOCKET is unset); the tool was not run.");
  const input =
    use.tool_input && typeof use.tool_input === 'object' && !Array.isArray(use.tool_input)
      ? (use.tool_input as Record<string, unknown>)
      : {};
  const answer = await ask(
    socket,
    tool,
    input,
    typeof use.tool_use_id === 'string' ? use.tool_use_id : undefined,
  );
  decide(answer.decision === 'allow' ? 'allow' : 'deny', String(answer.message ?? ''));
}

main().then(
  () => process.exit(0),
  (err) => block(`could not ask the task's owner (${(err as Error).message}); the tool was not run.`),
);
