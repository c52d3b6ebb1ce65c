/**
 * The headless runtime's conversation, in the guest: the task terminal's own process. It runs the
 * first turn on the task's prompt, then each follow-up the owner sends (from the Discord thread or
 * the task page, through the host and the sidecar's door) as the next turn of the same Claude Code
 * session:
 *
 *   claude -p --output-format stream-json --verbose (--session-id | --resume) <id>   (the message on stdin)
 *
 * Each turn's events are rendered as readable lines, framed by markers the host reads
 * (common/guest-markers.ts): the turn's start, and its summary at its end. Questions the
 * permission hook asks, and their answers, are shown as they come.
 *
 * The terminal: Ctrl-C interrupts a running turn; between turns, a line starting with `!` runs in
 * a shell here (to look at what the agent did). Messages to the agent go through the thread or the
 * task page, so that every turn is numbered and recorded in one place.
 *
 * Bundled (vm/guest/build.ts) and run as `node -e "$LIA_DRIVER"`; its settings come in the
 * environment: LIA_PROMPT, LIA_SESSION_ID, LIA_CLAUDE_SETTINGS (the hook, when the mode asks),
 * LIA_AGENT_SOCKET (from the sidecar).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';
import { markerText } from '../../common/guest-markers.js';
import { previewToolUse } from '../../common/tool-preview.js';
import { AGENT_SOCKET_ENV, type AgentEvent, LineReader, line } from './agent-protocol.js';

const env = process.env;
const sessionId = env.LIA_SESSION_ID ?? '';
const settings = env.LIA_CLAUDE_SETTINGS;
const DIM = '\x1b[2m';
const BOLD = '\x1b[1m';
const YELLOW = '\x1b[33m';
const RESET = '\x1b[0m';
const HINT =
  "Write your next message to the agent in the task's Discord thread or in the box under this terminal. " +
  'Here, a line starting with ! runs in a shell.';

/** A line (or lines) for the terminal: the PTY is raw, so each newline carries its carriage return. */
const say = (s: string) => process.stdout.write(`${String(s).replace(/\r?\n/g, '\r\n')}\r\n`);

let sessionStarted = false;
let running: { child: ChildProcess; interrupted: boolean } | undefined;
let shell: ChildProcess | undefined;
const turns: { n: number; text: string }[] = [];
let typed = '';
let door: net.Socket | undefined;

// ---- the turns --------------------------------------------------------------------------------

async function runTurn(n: number, text: string): Promise<void> {
  process.stdout.write(markerText('turn', { n, state: 'running' }));
  if (n > 1) {
    const first = text.trim().split('\n')[0]!.slice(0, 200);
    say(`\n${BOLD}› ${first}${RESET}${DIM} (turn ${n})${RESET}`);
  }
  const args = [
    '-p',
    '--output-format',
    'stream-json',
    '--verbose',
    '--dangerously-skip-permissions',
    ...(settings ? ['--settings', settings] : []),
    ...(sessionStarted ? ['--resume', sessionId] : ['--session-id', sessionId]),
  ];
  const started = Date.now();
  // Its own process group: an interrupt reaches the hook it may be waiting in, too.
  const child = spawn('claude', args, { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
  running = { child, interrupted: false };
  child.stdin!.end(text);
  let result: { result: string; isError: boolean; numTurns: number; durationMs: number } | undefined;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const lines = readline.createInterface({ input: child.stdout! });
  lines.on('line', (l) => {
    // biome-ignore lint/suspicious/noExplicitAny: Claude Code's stream-json events, read defensively
    let e: Record<string, any>;
    try {
      e = JSON.parse(l);
    } catch {
      if (l.trim()) say(l);
      return;
    }
    if (e.type === 'system' && e.subtype === 'init') {
      sessionStarted = true;
      if (n === 1) say(`● Claude Code ${e.claude_code_version ?? ''} · ${e.model ?? ''}`);
    } else if (e.type === 'assistant') {
      for (const b of e.message?.content ?? []) {
        if (b.type === 'text') say(b.text);
        else if (b.type === 'tool_use') say(`⚙ ${b.name} ${JSON.stringify(b.input).slice(0, 300)}`);
      }
    } else if (e.type === 'user') {
      for (const b of e.message?.content ?? []) {
        if (b.type !== 'tool_result') continue;
        const t =
          typeof b.content === 'string'
            ? b.content
            : (b.content ?? []).map((c: { text?: string }) => c.text ?? '').join('');
        say(`  ↳ ${String(t).split('\n')[0]!.slice(0, 200)}`);
      }
    } else if (e.type === 'result') {
      result = {
        result: String(e.result ?? '').slice(0, 20_000),
        isError: !!e.is_error,
        numTurns: Number(e.num_turns) || 0,
        durationMs: Number(e.duration_ms) || 0,
      };
    }
  });
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const interrupted = running.interrupted;
  running = undefined;
  if (!result) {
    const why = interrupted
      ? 'Interrupted from the terminal.'
      : `Claude Code ended without a result (${exit.signal ?? `exit code ${exit.code}`}). ${stderr.trim().split('\n').slice(-3).join(' ')}`;
    result = { result: why.trim(), isError: true, numTurns: 0, durationMs: Date.now() - started };
  } else if (stderr.trim() && result.isError) say(`${DIM}${stderr.trim().slice(-1000)}${RESET}`);
  say(`${result.isError ? '✖' : '✔'} turn ${n} finished after ${result.numTurns} model turns`);
  process.stdout.write(markerText('summary', { turn: n, ...result }));
}

/** One turn at a time, in the order they came; then wait for the next. */
async function converse(): Promise<void> {
  turns.push({ n: 1, text: env.LIA_PROMPT ?? '' });
  for (;;) {
    const t = turns.shift();
    if (!t) {
      prompt();
      await nextTurn();
      continue;
    }
    typed = '';
    await runTurn(t.n, t.text);
  }
}

let wake: (() => void) | undefined;
function nextTurn(): Promise<void> {
  door?.write(line({ type: 'next' }));
  return new Promise((resolve) => {
    wake = resolve;
  });
}

// ---- the sidecar's door: turns in, questions and answers shown ------------------------------

function openDoor(): void {
  const path = env[AGENT_SOCKET_ENV];
  if (!path) {
    say(`${DIM}(This sidecar takes no follow-ups: the conversation ends with this turn.)${RESET}`);
    return;
  }
  const conn = net.createConnection(path);
  const reader = new LineReader();
  conn.on('connect', () => {
    door = conn;
    conn.write(line({ type: 'watch' }));
    // Waiting for a turn already: ask again on the new connection.
    if (wake) conn.write(line({ type: 'next' }));
  });
  conn.on('data', (chunk: Buffer) => {
    let events: AgentEvent[];
    try {
      events = reader.push(chunk) as AgentEvent[];
    } catch {
      conn.destroy();
      return;
    }
    for (const e of events) onEvent(e);
  });
  conn.on('error', () => {});
  conn.on('close', () => {
    if (door === conn) door = undefined;
    setTimeout(openDoor, 1000);
  });
}

function onEvent(e: AgentEvent): void {
  if (e.type === 'turn') {
    turns.push({ n: e.n, text: e.text });
    if (!shell) {
      const w = wake;
      wake = undefined;
      if (w) {
        process.stdout.write('\r\n');
        w();
      }
    }
  } else if (e.type === 'question') {
    const p = previewToolUse(e.tool, e.input, { summaryChars: 300, detailChars: 600 });
    say(`${YELLOW}? ${e.tool}: ${p.summary}${RESET}`);
    if (p.detail) say(`${DIM}${p.detail}${RESET}`);
    say(`${YELLOW}  waiting for the owner's answer (the Discord thread, or the task page)${RESET}`);
  } else if (e.type === 'answered') {
    say(`${e.decision === 'allow' ? '✔' : '✖'} ${e.note}`);
  }
}

// ---- the terminal ------------------------------------------------------------------------------

function prompt(): void {
  say(`\n${DIM}${HINT}${RESET}`);
  process.stdout.write(`› ${typed}`);
}

function onKeys(data: string): void {
  if (shell) return;
  if (running) {
    if (data.includes('\x03')) {
      running.interrupted = true;
      say('^C');
      const pid = running.child.pid;
      if (pid) {
        try {
          process.kill(-pid, 'SIGINT');
        } catch {}
        const child = running.child;
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null)
            try {
              process.kill(-pid, 'SIGKILL');
            } catch {}
        }, 5000).unref();
      }
    }
    return;
  }
  // Escape sequences (arrows, paste brackets) are not line editing here.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
  for (const ch of data.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b./g, '')) {
    if (ch === '\r' || ch === '\n') {
      const l = typed;
      typed = '';
      process.stdout.write('\r\n');
      submit(l);
    } else if (ch === '\x7f' || ch === '\b') {
      if (typed) {
        typed = [...typed].slice(0, -1).join('');
        process.stdout.write('\b \b');
      }
    } else if (ch === '\x03' || ch === '\x15') {
      typed = '';
      process.stdout.write('\r\n› ');
    } else if (ch >= ' ') {
      typed += ch;
      process.stdout.write(ch);
    }
  }
}

function submit(l: string): void {
  const t = l.trim();
  if (t.startsWith('!')) {
    const cmd = t.slice(1).trim();
    if (!cmd) return void process.stdout.write('› ');
    // The shell reads the terminal now, not this process.
    process.stdin.pause();
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    shell = spawn('bash', ['--noprofile', '--norc', '-c', cmd], { stdio: 'inherit', env });
    shell.on('close', () => {
      shell = undefined;
      if (process.stdin.isTTY) process.stdin.setRawMode(true);
      process.stdin.resume();
      if (turns.length && wake) {
        const w = wake;
        wake = undefined;
        w();
      } else process.stdout.write('› ');
    });
    return;
  }
  if (t) say(`${DIM}${HINT}${RESET}`);
  process.stdout.write('› ');
}

if (process.stdin.isTTY) process.stdin.setRawMode(true);
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => onKeys(d));
openDoor();
void converse();
