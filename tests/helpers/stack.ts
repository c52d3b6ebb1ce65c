/**
 * A whole Lia for end-to-end tests: control worker and API in this process, the host worker as
 * a child process (so a test can kill -9 it), all against the real Temporal and PostgreSQL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from '@temporalio/worker';
import WebSocket from 'ws';
import { queueWaker } from '../../activities/queue.js';
import { startApi } from '../../api/server.js';
import type { Config } from '../../common/config.js';
import { createPool, type Pool } from '../../common/db/pool.js';
import { createLogger } from '../../common/logger.js';
import { OutputLog } from '../../output/log.js';
import { readPidFile, sessionPids, signalPids } from '../../system/procs.js';
import { HostService } from '../../tasks/hosts.js';
import { LinkSigner } from '../../tasks/links.js';
import { TaskService } from '../../tasks/service.js';
import { createControlWorker } from '../../workers/control.js';
import { connectTemporalShared } from '../../workers/shared-connection.js';
import {
  repoRoot,
  type TestTemporal,
  testConfig,
  testDatabase,
  testTemporal,
  waitFor,
  workflowBundle,
} from './env.js';

export interface TestStack {
  config: Config;
  vars: Record<string, string>;
  pool: Pool;
  output: OutputLog;
  temporal: TestTemporal;
  tasks: TaskService;
  links: LinkSigner;
  apiUrl: string;
  /** Cuts every WebSocket stream of the API from the server's side. */
  dropStreams(): number;
  serviceToken: string;
  stateDir: string;
  hostWorker(): ChildProcess;
  startHostWorker(): Promise<void>;
  killHostWorker(signal?: NodeJS.Signals): Promise<void>;
  /** fetch against the API as a service acting for `user`. */
  api(method: string, route: string, user: string, body?: unknown): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** The VMM's pid in a driver's record (vm/process/supervisor.ts), if there is one. */
function vmmPid(file: string): number | undefined {
  try {
    const pid = (JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: unknown }).pid;
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function startTestStack(
  name: string,
  extra: Record<string, string> = {},
  opts: { adminDatabaseUrl?: string; temporalAddress?: string } = {},
): Promise<TestStack> {
  const dbUrl = await testDatabase(`lia_test_${name}`, opts.adminDatabaseUrl);
  const temporal = await testTemporal(opts.temporalAddress);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `lia-${name}-`));
  const serviceToken = randomBytes(24).toString('hex');
  const hostId = `${name.replace(/[^a-z0-9-]/g, '-')}-${randomBytes(3).toString('hex')}`;
  const vars: Record<string, string> = {
    LIA__DATABASE__URL: dbUrl,
    LIA__TEMPORAL__ADDRESS: temporal.address,
    LIA__STATE__DIR: stateDir,
    LIA__HOST__ID: hostId,
    LIA__HOST__HEARTBEAT_SECONDS: '1',
    LIA__VM__DRIVER: 'local',
    LIA__API__SERVICE_TOKEN: serviceToken,
    LIA__API__LINK_SECRET: randomBytes(24).toString('hex'),
    LIA__SERVER__PORT: '0',
    // No fixed metrics port: another test run on this machine (another worktree) may hold it.
    LIA__METRICS__PORT: '0',
    LIA__LOG__LEVEL: process.env.LIA_TEST_LOG_LEVEL ?? 'warn',
    ...extra,
  };
  const config = testConfig(vars);
  const pool = createPool(dbUrl);
  const logger = createLogger(`test-${name}`, 'warn');
  // As `./lia start` does: the API's client shares the control worker's connection (eager start).
  const shared = await connectTemporalShared(config, temporal.address);
  const control: Worker = await createControlWorker({
    connection: shared.connection,
    temporalAddress: temporal.address,
    config,
    logger,
    pool,
    workflowBundlePath: await workflowBundle(),
  });
  const controlRun = control.run();
  const links = new LinkSigner(config.api.link_secret!, config.api.link_ttl_minutes);
  const tasks = new TaskService(shared.client, pool, config, links, { eagerStart: true });
  const output = new OutputLog(pool);
  const api = await startApi({
    config,
    tasks,
    hosts: new HostService(pool, queueWaker(pool, shared.client)),
    output,
    links,
    logger,
    databaseUrl: dbUrl,
  });
  config.server.public_url = api.url;

  let host: ChildProcess | undefined;
  const startHostWorker = async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'workers', 'main.ts'), 'host'],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LIA_EXIT_WITH_PARENT: '1', ...vars },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    host = child;
    await waitFor(
      'the host worker to register',
      async () => {
        if (child.exitCode !== null) throw new Error(`host worker exited with ${child.exitCode}`);
        const { rows } = await pool.query(
          `SELECT 1 FROM hosts WHERE id = $1 AND heartbeat_at > now() - interval '3 seconds'`,
          [hostId],
        );
        return rows.length > 0;
      },
      // A first run may build the guest image before the worker comes up.
      Number(process.env.LIA_TEST_HOST_READY_MS ?? 600_000),
      100,
    );
  };
  const killHostWorker = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const h = host;
    if (!h || h.exitCode !== null || h.signalCode !== null) return;
    const exited = new Promise((r) => h.once('exit', r));
    h.kill(signal);
    await exited;
  };
  await startHostWorker();
  // A run that dies without close() still takes its host worker and agents with it.
  const sweep = () => {
    host?.kill('SIGKILL');
    const vms = path.join(stateDir, 'hosts', hostId, 'vms');
    for (const id of fs.existsSync(vms) ? fs.readdirSync(vms) : []) {
      // local: the sidecar and the agent's PTY session; qemu: the VMM.
      const sidecar = readPidFile(path.join(vms, id, 'sidecar.pid'));
      const agent = readPidFile(path.join(vms, id, 'agent.pid'));
      const qemu = readPidFile(path.join(vms, id, 'qemu.pid')) ?? vmmPid(path.join(vms, id, 'vmm.json'));
      const pids = [sidecar, qemu, ...(agent ? sessionPids(agent) : [])].filter((p): p is number => !!p);
      if (pids.length) signalPids(pids, 'SIGKILL');
    }
  };
  process.once('exit', sweep);

  return {
    config,
    vars,
    pool,
    output,
    temporal,
    tasks,
    links,
    apiUrl: api.url,
    dropStreams: () => api.dropStreams(),
    serviceToken,
    stateDir,
    hostWorker: () => host!,
    startHostWorker,
    killHostWorker,
    async api(method, route, user, body) {
      const res = await fetch(`${api.url}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${serviceToken}`,
          'x-lia-user': user,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json };
    },
    async close() {
      await killHostWorker('SIGTERM');
      // Whatever a test left running (VMs and sidecars outlive workers by design) goes with the stack.
      sweep();
      await new Promise((r) => setTimeout(r, 100));
      fs.rmSync(stateDir, { recursive: true, force: true });
      process.off('exit', sweep);
      control.shutdown();
      await controlRun.catch(() => {});
      await api.close();
      await pool.end();
      await shared.connection.close();
      await temporal.teardown();
    },
  };
}

/** A WebSocket on a task's stream that collects output by seq and exposes it as text. */
export class StreamClient {
  readonly chunks = new Map<number, Buffer>();
  readonly states: string[] = [];
  /** Numbered input the server acknowledged, and the errors it sent. */
  readonly acks: number[] = [];
  readonly errors: string[] = [];
  lastSeq = 0;
  duplicates = 0;
  gaps = 0;
  private ws!: WebSocket;

  /** `sender`: the id under which this client numbers its input (see api/routes/stream.ts). */
  constructor(private readonly sender?: string) {}

  static async open(
    apiUrl: string,
    taskId: string,
    token: string,
    from = 0,
    sender?: string,
  ): Promise<StreamClient> {
    const c = new StreamClient(sender);
    await c.connect(apiUrl, taskId, token, from);
    return c;
  }

  async connect(apiUrl: string, taskId: string, token: string, from = this.lastSeq + 1): Promise<void> {
    const senderParam = this.sender ? `&sender=${this.sender}` : '';
    const url = `${apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?from=${from}${senderParam}&token=${encodeURIComponent(token)}`;
    this.ws = new WebSocket(url);
    this.ws.on('message', (data, isBinary) => {
      const buf = data as Buffer;
      if (!isBinary) {
        const msg = JSON.parse(buf.toString('utf8'));
        if (msg.type === 'state') this.states.push(msg.status);
        else if (msg.type === 'ack') this.acks.push(msg.seq);
        else if (msg.type === 'error') this.errors.push(msg.message);
        return;
      }
      const seq = Number(buf.readBigUInt64BE(0));
      if (this.chunks.has(seq)) this.duplicates++;
      if (this.lastSeq && seq !== this.lastSeq + 1 && !this.chunks.has(seq)) this.gaps++;
      this.chunks.set(seq, buf.subarray(8));
      this.lastSeq = Math.max(this.lastSeq, seq);
    });
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  text(): string {
    return Buffer.concat([...this.chunks.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b)).toString(
      'utf8',
    );
  }

  type(data: string, seq?: number): void {
    this.ws.send(JSON.stringify({ type: 'input', data, seq }));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => this.ws.once('close', r));
    this.ws.close();
    await closed;
  }

  /** Drops the connection abruptly, as a network cut would. */
  cut(): void {
    this.ws.terminate();
  }

  async waitForText(re: RegExp | string, timeoutMs = 20_000): Promise<string> {
    try {
      return await waitFor(
        `terminal output matching ${re}`,
        () => {
          const t = this.text();
          return (typeof re === 'string' ? t.includes(re) : re.test(t)) ? t : undefined;
        },
        timeoutMs,
        20,
      );
    } catch (err) {
      // Say what did arrive: that is what a failure needs to be understood.
      const tail = JSON.stringify(this.text().slice(-600));
      throw new Error(
        `${(err as Error).message}; states ${this.states.join(',')}; terminal ends with ${tail}`,
      );
    }
  }
}

/** Terminal text as lines, without escape sequences (bash toggles bracketed paste around commands). */
export function terminalLines(text: string): string[] {
  return (
    text
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split(/\r*\n/)
      .map((l) => l.replace(/^\r+/, ''))
  );
}
