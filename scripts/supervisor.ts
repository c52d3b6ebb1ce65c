/**
 * Runs Lia's roles as child processes (workers/main.ts <role>) and keeps them running: one that
 * dies is logged and started again (after 1 s, doubling to 30 s while it keeps dying); a stop
 * stops them all (SIGTERM, then SIGKILL after 15 s). One that exits saying this machine cannot
 * run it (EXIT_UNFIT) is not started again. Children exit by themselves if this
 * process is killed (LIA_EXIT_WITH_PARENT).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { EXIT_UNFIT } from '../workers/exit-codes.js';

export interface RoleReady {
  role: string;
  info: Record<string, unknown>;
}

interface Child {
  role: string;
  env: NodeJS.ProcessEnv;
  proc?: ChildProcess;
  delay: number;
  startedAt: number;
  restarts: number;
}

const root = path.resolve(import.meta.dirname, '..');
const say = (m: string) => process.stderr.write(`[supervisor] ${m}\n`);

export class Supervisor {
  private readonly children: Child[] = [];

  /** `unfit`: a role exited saying this machine cannot run it; it is not started again. */
  constructor(private readonly unfit: (role: string) => void = () => {}) {}

  private stopping = false;
  private readonly readyOnce = new Map<string, (r: RoleReady) => void>();

  /** Starts a role; resolves with what it reports when it is first ready. */
  start(role: string, env: NodeJS.ProcessEnv): Promise<RoleReady> {
    const c: Child = { role, env, delay: 1000, startedAt: 0, restarts: 0 };
    this.children.push(c);
    const ready = new Promise<RoleReady>((resolve) => this.readyOnce.set(role, resolve));
    this.launch(c);
    return ready;
  }

  /** The child's pid (for tests and operators). */
  pid(role: string): number | undefined {
    return this.children.find((c) => c.role === role)?.proc?.pid;
  }

  private launch(c: Child): void {
    c.startedAt = Date.now();
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers', 'main.ts'), c.role], {
      cwd: root,
      env: { ...c.env, LIA_EXIT_WITH_PARENT: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    c.proc = proc;
    proc.on('message', (m: { type?: string; role?: string; info?: Record<string, unknown> }) => {
      if (m?.type !== 'ready') return;
      const resolve = this.readyOnce.get(c.role);
      this.readyOnce.delete(c.role);
      resolve?.({ role: c.role, info: m.info ?? {} });
      if (c.restarts) say(`${c.role} is running again (pid ${proc.pid})`);
    });
    proc.on('exit', (code, signal) => {
      if (c.proc !== proc || this.stopping) return;
      if (code === EXIT_UNFIT) {
        say(`${c.role} cannot run on this machine (its log above says why); not starting it again`);
        return this.unfit(c.role);
      }
      // Up for a minute or more: it was well; start again promptly.
      if (Date.now() - c.startedAt > 60_000) c.delay = 1000;
      say(`${c.role} exited (${signal ?? `code ${code}`}); starting it again in ${c.delay / 1000} s`);
      c.restarts++;
      const delay = c.delay;
      c.delay = Math.min(c.delay * 2, 30_000);
      setTimeout(() => {
        if (!this.stopping) this.launch(c);
      }, delay).unref();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(async (c) => {
        const p = c.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
