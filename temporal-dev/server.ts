/**
 * Runs a private Temporal dev server (`temporal server start-dev`) with a persistent database
 * file in the state folder, the Temporal UI on, and Lia's search attributes registered.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags } from '../common/search-attributes.js';

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
}

export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  const dir = path.join(o.stateDir, 'temporal');
  fs.mkdirSync(dir, { recursive: true });
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
  const address = `127.0.0.1:${o.port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
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
