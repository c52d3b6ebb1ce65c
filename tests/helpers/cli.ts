/**
 * Running the real `./lia <command>` in tests: in a pseudo-terminal (node-pty), as a person at a
 * terminal would, or with pipes when a test needs stdout and stderr apart.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as pty from 'node-pty';
import { repoRoot, waitFor } from './env.js';

export const LIA = path.join(repoRoot, 'lia');
export const CTRL_BRACKET = '\x1d';

/** The environment of a CLI run: this process's, without any LIA setting, plus `vars`. */
export function cliEnv(vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LIA') && v !== undefined) env[k] = v;
  return { ...env, TERM: 'xterm-256color', ...vars };
}

/** One `./lia …` in a PTY: everything it shows, what is typed into it, its window size. */
export class PtyRun {
  text = '';
  exitCode: number | undefined;
  readonly exited: Promise<number>;
  private readonly p: pty.IPty;

  constructor(
    args: string[],
    env: Record<string, string>,
    opts: { cols?: number; rows?: number; cwd?: string; file?: string } = {},
  ) {
    this.p = pty.spawn(opts.file ?? LIA, args, {
      name: 'xterm-256color',
      cols: opts.cols ?? 100,
      rows: opts.rows ?? 30,
      cwd: opts.cwd ?? repoRoot,
      env,
    });
    this.p.onData((d) => {
      this.text += d;
    });
    this.exited = new Promise((resolve) =>
      this.p.onExit(({ exitCode }) => {
        this.exitCode = exitCode;
        resolve(exitCode);
      }),
    );
  }

  type(data: string): void {
    this.p.write(data);
  }

  resize(cols: number, rows: number): void {
    this.p.resize(cols, rows);
  }

  /** Waits for text (or a pattern) in what the terminal showed; a timeout says what it did show. */
  async waitFor(what: string | RegExp, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(
        `the terminal to show ${what}`,
        () => (typeof what === 'string' ? this.text.includes(what) : what.test(this.text)),
        timeoutMs,
        20,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; it shows ${JSON.stringify(this.text.slice(-800))}`);
    }
  }

  /** Waits for the exit; a run still going after `timeoutMs` fails the test, and is killed. */
  async exit(timeoutMs = 15_000): Promise<number> {
    const code = await Promise.race([
      this.exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), timeoutMs)),
    ]);
    if (code === 'hung') {
      this.kill();
      throw new Error(
        `./lia did not exit within ${timeoutMs} ms; it shows ${JSON.stringify(this.text.slice(-800))}`,
      );
    }
    return code;
  }

  kill(): void {
    if (this.exitCode === undefined) this.p.kill('SIGKILL');
  }
}

/** `./lia …` with pipes: exit code, stdout as bytes and text, stderr. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string; stdin?: string } = {},
): Promise<{ code: number; stdout: string; bytes: Buffer; stderr: string }> {
  const child = spawn(LIA, args, { cwd: opts.cwd ?? repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(opts.stdin ?? '');
  const code = await new Promise<number>((resolve) =>
    child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 0))),
  );
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString('utf8'), bytes, stderr };
}

/**
 * What an attached terminal showed of the agent itself: its bytes, without Lia's own status
 * lines (`\r\n[lia] …\r\n`, on stderr) and the mode reset written on leaving. Line ends are
 * made `\n`: the test's PTY turns the CLI's `\n` into `\r\n` (ONLCR, kept on in raw mode).
 */
export function agentText(terminal: string): string {
  return (
    normalizeLineEnds(terminal)
      .replace(/^\[lia\] attached [^\n]*\n/, '')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the reset is escape codes
      .replace(/(?:\x1b\[\?\d+l)*(?:\x1b\[\?25h)?\x1b\[0m(?=\n\[lia\] )/g, '')
      .replace(/\n\[lia\] [^\n]*\n/g, '')
  );
}

export function normalizeLineEnds(text: string): string {
  return text.replace(/\r+\n/g, '\n');
}

/** How many times `needle` occurs in `text`. */
export function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}
