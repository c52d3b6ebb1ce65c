/** Lia's roles as separate processes (workers/main.ts <role>), for tests of a deployment's shape. */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { repoRoot, waitFor } from './env.js';

export interface RoleProcess {
  role: string;
  env: Record<string, string>;
  proc: ChildProcess;
  /** Resolves with what the role reported when ready (its IPC message). */
  ready: Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function startRole(role: string, env: Record<string, string>): RoleProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'workers', 'main.ts'), role], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LIA_EXIT_WITH_PARENT: '1', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.on('message', (m: { type?: string; info?: Record<string, unknown> }) => {
      if (m?.type === 'ready') resolve(m.info ?? {});
    });
    proc.once('exit', (code) =>
      reject(new Error(`the ${role} role exited with ${code} before it was ready`)),
    );
  });
  ready.catch(() => {});
  return {
    role,
    env,
    proc,
    ready,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
  };
}

/** The text of a role's /metrics, and one sample's value from it. */
export async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

export const waitReady = (r: RoleProcess, ms = 120_000) =>
  waitFor(`the ${r.role} role to be ready`, () => r.ready.then(() => true), ms, 100);
