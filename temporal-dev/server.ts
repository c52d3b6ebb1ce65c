/**
 * Runs a private Temporal dev server (`temporal server start-dev`) with a persistent database
 * file in the state folder, the Temporal UI on, and Lia's search attributes registered.
 * `temporal/server.pid` says which process runs it and for whom, so a server left behind by a
 * run that was killed is stopped by the next, and a second Lia on the same folder is told why
 * it cannot start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags } from '../common/search-attributes.js';
import { isAlive } from '../system/procs.js';

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  cli: string;
  stateDir: string;
  port: number;
  uiPort: number;
  namespace: string;
  timeoutMs?: number;
  progress?: (message: string) => void;
}

function isDevServer(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start-dev');
  } catch {
    return false;
  }
}

/** Stops the dev server a killed run left behind; refuses when its owner still runs. */
async function clearLeftover(dir: string, pidFile: string, say: (m: string) => void): Promise<void> {
  if (!fs.existsSync(pidFile)) return;
  const [server = 0, owner = 0] = fs.readFileSync(pidFile, 'utf8').trim().split(/\s+/).map(Number);
  if (server && isAlive(server) && isDevServer(server)) {
    if (owner && owner !== process.pid && isAlive(owner)) {
      throw new Error(
        `the Temporal dev server of ${dir} (pid ${server}) belongs to a Lia that is still running ` +
          `(pid ${owner}): stop that one first, or give this one another LIA__STATE__DIR`,
      );
    }
    say(`[temporal] stopping the dev server a killed run left behind (pid ${server})…`);
    process.kill(server, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (isAlive(server) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(server)) process.kill(server, 'SIGKILL');
  }
  fs.rmSync(pidFile, { force: true });
}

export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  const dir = path.join(o.stateDir, 'temporal');
  fs.mkdirSync(dir, { recursive: true });
  const pidFile = path.join(dir, 'server.pid');
  await clearLeftover(dir, pidFile, o.progress ?? (() => {}));
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const child = spawn(
    o.cli,
    [
      'server',
      'start-dev',
      '--db-filename',
      path.join(dir, 'dev.db'),
      '--ip',
      '127.0.0.1',
      '--port',
      String(o.port),
      '--ui-port',
      String(o.uiPort),
      '--namespace',
      o.namespace,
      '--log-level',
      'warn',
      ...searchAttributeFlags(),
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  fs.writeFileSync(pidFile, `${child.pid} ${process.pid}\n`);
  const address = `127.0.0.1:${o.port}`;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      fs.rmSync(pidFile, { force: true });
      resolve(code);
    }),
  );
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 250, undefined))]);
    if (code !== undefined) {
      throw new Error(`temporal server start-dev exited with ${code}; see ${path.join(dir, 'server.log')}`);
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `the Temporal dev server did not answer on ${address} within ${o.timeoutMs ?? 60_000} ms`,
        );
      }
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${o.uiPort}`,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
