/**
 * The sidecar's git work for the coding loop (issue 20): the task's checkout before the agent
 * starts, and the commit and push before a pull request is opened. Git runs as the agent's user,
 * with the agent's home, so the agent's own git sees the same configuration (the URL rewrite to
 * the proxy endpoint, which carries no credential: the host adds it).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { HostMessage } from '../protocol.js';

export interface GitUser {
  uid: number;
  gid: number;
  home: string;
}

type RepoMessage = Extract<HostMessage, { type: 'repo' }>;

const MAX_OUTPUT = 12_000;

/** git as the agent's user, with a clean environment (plus `env`), its output piped. */
export function spawnGit(
  args: string[],
  o: { cwd: string; user?: GitUser; env?: Record<string, string> },
): ChildProcessWithoutNullStreams {
  return spawn('git', args, {
    cwd: o.cwd,
    env: {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: o.user?.home ?? path.resolve(o.cwd),
      GIT_TERMINAL_PROMPT: '0',
      ...o.env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
  });
}

/** Runs git; its output (stdout and stderr) goes to `onData` as it comes, and is kept (its tail). */
export function runGit(
  args: string[],
  o: { cwd: string; user?: GitUser; onData?: (b: Buffer) => void; timeoutMs?: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-MAX_OUTPUT);
      o.onData?.(b);
    };
    const child = spawnGit(args, o);
    child.stdin.end();
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 10 * 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, output: `${out}\n${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: out });
    });
  });
}

/** Git's output for a terminal: bare newlines become CRLF (its progress lines keep their CR). */
const forTerminal = (b: Buffer) => Buffer.from(b.toString('utf8').replace(/\r?\n/g, '\r\n'));

/**
 * Sets the rewrite, clones and checks out the task's branch. Returns the checkout's folder, or
 * undefined when the clone failed (said in the terminal through `say`).
 */
export async function checkoutRepo(
  m: RepoMessage,
  workdir: string,
  user: GitUser | undefined,
  say: (b: Buffer) => void,
): Promise<string | undefined> {
  const line = (s: string) => say(Buffer.from(`${s}\r\n`));
  const dir = path.basename(m.dir);
  if (!dir || dir === '.' || dir === '..') {
    line(`\x1b[1;31mLia: refused checkout folder ${JSON.stringify(m.dir)}\x1b[0m`);
    return undefined;
  }
  const target = path.join(workdir, dir);
  if (fs.existsSync(path.join(target, '.git'))) return target; // a retried start: done already
  const cfg = async (key: string, value: string) =>
    runGit(['config', '--global', key, value], { cwd: workdir, user });
  await cfg(m.rewrite.key, m.rewrite.value);
  await cfg('user.name', 'Lia agent');
  await cfg('user.email', 'agent@lia.invalid');
  line(`\x1b[1mLia: cloning ${m.url}${m.base ? ` (branch ${m.base})` : ''} into ${dir}…\x1b[0m`);
  const clone = await runGit(
    ['clone', '--progress', ...(m.base ? ['--branch', m.base] : []), '--', m.url, dir],
    { cwd: workdir, user, onData: (b) => say(forTerminal(b)) },
  );
  if (clone.code !== 0) {
    // git's own message came through `say`; a git that could not start says why only here.
    if (clone.code === 127) line(clone.output.trim().split('\n').pop() ?? '');
    line(
      `\x1b[1;31mLia: the clone of ${m.url} failed (git exited with ${clone.code}); the agent starts without it.\x1b[0m`,
    );
    return undefined;
  }
  const co = await runGit(['checkout', '-b', m.branch], { cwd: target, user });
  say(forTerminal(Buffer.from(co.output)));
  if (co.code !== 0) {
    line(`\x1b[1;31mLia: could not create branch ${m.branch}\x1b[0m`);
    return target;
  }
  // What the task's diff is taken against (the page's diff view), whatever the agent commits.
  const base = await runGit(['rev-parse', 'HEAD'], { cwd: target, user });
  if (base.code === 0) await runGit(['config', 'lia.base', base.output.trim()], { cwd: target, user });
  keepPromptBeside(workdir, target, user);
  line(`\x1b[1mLia: ${dir} is checked out on ${m.branch}; push it with git push origin HEAD\x1b[0m`);
  return target;
}

/**
 * The agent starts in the checkout and reads PROMPT.md there: a copy of the task's, which git
 * ignores (.git/info/exclude), so the pull request's commit never takes it. A repository with a
 * PROMPT.md of its own keeps it; the task's stays in the folder above.
 */
function keepPromptBeside(workdir: string, target: string, user: GitUser | undefined): void {
  const from = path.join(workdir, 'PROMPT.md');
  const to = path.join(target, 'PROMPT.md');
  if (!fs.existsSync(from) || fs.existsSync(to)) return;
  fs.copyFileSync(from, to);
  const exclude = path.join(target, '.git', 'info', 'exclude');
  fs.mkdirSync(path.dirname(exclude), { recursive: true });
  fs.appendFileSync(exclude, '\n# the task prompt Lia put here\n/PROMPT.md\n');
  if (user) {
    fs.chownSync(to, user.uid, user.gid);
    fs.chownSync(exclude, user.uid, user.gid);
  }
}

/**
 * `git add -A && git commit` when something is uncommitted, then `git push origin HEAD:<branch>`
 * — unless the branch has no commit beyond its base (`empty`: there is nothing to review).
 */
export async function commitAndPush(
  m: Extract<HostMessage, { type: 'git'; op: 'push' }>,
  repoDir: string | undefined,
  user: GitUser | undefined,
): Promise<{ ok: boolean; output: string; empty?: boolean }> {
  if (!repoDir) return { ok: false, output: 'this task has no checkout of its repository' };
  let output = '';
  const step = async (args: string[]) => {
    const r = await runGit(args, { cwd: repoDir, user });
    output += `$ git ${args.join(' ')}\n${r.output}`;
    return r.code;
  };
  if ((await step(['add', '-A'])) !== 0) return { ok: false, output };
  const staged = await runGit(['diff', '--cached', '--quiet'], { cwd: repoDir, user });
  if (staged.code === 1) {
    const c = await step([
      '-c',
      'user.name=Lia agent',
      '-c',
      'user.email=agent@lia.invalid',
      'commit',
      '-q',
      '-m',
      m.message,
    ]);
    if (c !== 0) return { ok: false, output };
  }
  // Nothing to push when the branch is where it started (a turn that changed nothing).
  const base = (await runGit(['config', '--get', 'lia.base'], { cwd: repoDir, user })).output.trim();
  if (/^[0-9a-f]{40,64}$/.test(base)) {
    const ahead = await runGit(['rev-list', '--count', `${base}..HEAD`], { cwd: repoDir, user });
    if (ahead.code === 0 && ahead.output.trim() === '0')
      return { ok: true, empty: true, output: `${output}the branch has no commit beyond its base\n` };
  }
  const pushed = await step(['push', 'origin', `HEAD:refs/heads/${m.branch}`]);
  return { ok: pushed === 0, output: output.slice(-MAX_OUTPUT) };
}

/** The agent user's home, from /etc/passwd. */
export function homeOf(name: string): string | undefined {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return f[5];
  }
  return undefined;
}
