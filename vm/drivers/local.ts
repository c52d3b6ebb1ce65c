/**
 * The `local` driver: no VM at all. The sidecar runs as a detached host process (its own
 * session, a clean environment), so a worker restart leaves the agent alone. Suspend stops the
 * sidecar and every process of the agent's PTY session with SIGSTOP; resume continues them
 * with SIGCONT. Nothing is written to disk for that, and nothing is isolated: development only.
 *
 * Sidecars are kept started ahead, in spare folders: a boot renames one to the task's folder
 * (the sidecar works by relative paths) and starts a replacement, so a task does not wait for a
 * Node.js process to start.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/logger.js';
import {
  isAlive,
  isStopped,
  processesUnder,
  readPidFile,
  sessionPids,
  signalPids,
} from '../../system/procs.js';
import type { Progress, VmDriver, VmSpec } from '../driver.js';
import { VmError } from '../driver.js';
import { ensureSidecarBuilt } from '../sidecar/build.js';
import { SidecarConnection } from '../sidecar/client.js';

const READY_TIMEOUT_MS = 15_000;
/** Sidecars kept started ahead (two: tasks spawned back to back find one ready). */
const SPARES = 2;
const SPARE_DELAY_MS = 100;
/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export interface LocalDriverOptions {
  stateDir: string;
  hostId: string;
  logger: Logger;
}

export class LocalDriver implements VmDriver {
  readonly name = 'local' as const;
  readonly acceleration = 'none';
  private readonly root: string;
  private readonly spares: Promise<string | undefined>[] = [];
  private spareTimer?: NodeJS.Timeout;

  constructor(private readonly o: LocalDriverOptions) {
    this.root = path.resolve(o.stateDir, 'hosts', o.hostId, 'vms');
    // Spares of an earlier worker exited with it; their folders are all that is left.
    if (fs.existsSync(this.root))
      for (const name of fs.readdirSync(this.root))
        if (name.startsWith('.s-')) fs.rmSync(path.join(this.root, name), { recursive: true, force: true });
  }

  private files(taskId: string) {
    return this.filesIn(path.join(this.root, taskId));
  }

  private filesIn(dir: string) {
    return {
      dir,
      work: path.join(dir, 'work'),
      socket: path.join(dir, 'sidecar.sock'),
      sidecarPid: path.join(dir, 'sidecar.pid'),
      agentPid: path.join(dir, 'agent.pid'),
      suspended: path.join(dir, 'suspended'),
      log: path.join(dir, 'sidecar.log'),
    };
  }

  /** The sidecar and every process of the agent's session. */
  private pids(taskId: string): number[] {
    const f = this.files(taskId);
    const sidecar = readPidFile(f.sidecarPid);
    const agent = readPidFile(f.agentPid);
    const pids = new Set<number>();
    if (sidecar && isAlive(sidecar)) pids.add(sidecar);
    if (agent) for (const p of sessionPids(agent)) pids.add(p);
    return [...pids];
  }

  async boot(spec: VmSpec, progress: Progress): Promise<void> {
    const f = this.files(spec.taskId);
    const running = readPidFile(f.sidecarPid);
    if (running && isAlive(running)) {
      await waitForSocket(f.socket, READY_TIMEOUT_MS);
      return;
    }
    const spare = await this.takeSpare();
    if (spare) {
      let moved = false;
      try {
        fs.renameSync(spare, f.dir);
        moved = true;
        // A first host session makes it the task's for good (a spare exits with its worker).
        (await SidecarConnection.open(await this.connect(spec.taskId), READY_TIMEOUT_MS)).close();
        progress('local: took a sidecar started ahead');
        return;
      } catch (err) {
        this.o.logger.warn({ err: (err as Error).message }, 'local: the spare sidecar could not be used');
        await this.killIn(moved ? f.dir : spare);
      }
    }
    progress('local: starting the sidecar');
    await this.startSidecar(f.dir, false);
  }

  /** The oldest spare's folder if there is one (and tops the spares up soon), else undefined. */
  private async takeSpare(): Promise<string | undefined> {
    const ready = this.spares.shift();
    this.refillSoon();
    return ready ? await ready : undefined;
  }

  /**
   * Starts spares one at a time, each a moment after the last: starting Node.js takes a core for
   * a while, and the first output of the task that was just booted should not wait behind it.
   */
  private refillSoon(): void {
    this.spareTimer ??= setTimeout(() => {
      this.spareTimer = undefined;
      if (this.spares.length >= SPARES) return;
      this.spares.push(this.makeSpare());
      this.refillSoon();
    }, SPARE_DELAY_MS);
    this.spareTimer.unref();
  }

  private makeSpare(): Promise<string | undefined> {
    // No longer than a task id, so its socket path fits wherever a task's does.
    const dir = path.join(this.root, `.s-${randomBytes(4).toString('hex')}`);
    return this.startSidecar(dir, true).then(
      () => dir,
      (err) => {
        this.o.logger.debug({ err: (err as Error).message }, 'local: no spare sidecar');
        return undefined;
      },
    );
  }

  private async killIn(dir: string): Promise<void> {
    const pid = readPidFile(this.filesIn(dir).sidecarPid);
    if (pid && isAlive(pid)) signalPids([pid], 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }

  private async startSidecar(dir: string, spare: boolean): Promise<void> {
    const f = this.filesIn(dir);
    if (f.socket.length > MAX_SOCKET_PATH) {
      throw new VmError(
        `the state folder path is too long for a Unix socket (${f.socket}); use a shorter LIA__STATE__DIR`,
        false,
      );
    }
    fs.mkdirSync(f.work, { recursive: true });
    const bundle = await ensureSidecarBuilt();
    const log = fs.openSync(f.log, 'a');
    const child = spawn(
      process.execPath,
      // Relative paths: the folder may be renamed (a spare becoming a task's).
      [
        bundle,
        '--listen',
        `unix:${f.socket}`,
        '--workdir',
        '.',
        '--pidfile',
        '../agent.pid',
        ...(spare ? ['--spare', String(process.pid)] : []),
      ],
      {
        cwd: f.work,
        detached: true,
        stdio: ['ignore', log, log],
        // Nothing of the worker's environment (database URL, keys) reaches the sidecar.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: f.work },
      },
    );
    fs.closeSync(log);
    if (!child.pid) throw new VmError('could not start the sidecar process');
    fs.writeFileSync(f.sidecarPid, String(child.pid));
    child.unref();
    await waitForSocket(f.socket, READY_TIMEOUT_MS, () => {
      if (!isAlive(child.pid!)) {
        const tail = fs.existsSync(f.log) ? fs.readFileSync(f.log, 'utf8').slice(-400) : '';
        throw new VmError(`the sidecar exited at start: ${tail}`);
      }
    });
  }

  async connect(taskId: string): Promise<Duplex> {
    const { socket } = this.files(taskId);
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socket);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => reject(new VmError(`task ${taskId}: cannot reach its sidecar: ${e.message}`)));
    });
  }

  async suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }> {
    const f = this.files(taskId);
    progress('local: stopping the agent (SIGSTOP)');
    fs.writeFileSync(f.suspended, new Date().toISOString());
    const pids = this.pids(taskId);
    signalPids(pids, 'SIGSTOP');
    const deadline = Date.now() + 5000;
    while (pids.some((p) => isAlive(p) && !isStopped(p))) {
      if (Date.now() > deadline) throw new VmError('the agent did not stop within 5 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    return { snapshotBytes: 0 };
  }

  async restore(taskId: string, progress: Progress): Promise<void> {
    const f = this.files(taskId);
    const sidecar = readPidFile(f.sidecarPid);
    if (!sidecar || !isAlive(sidecar))
      throw new VmError(`task ${taskId}: the suspended agent is gone from this host`, false);
    progress('local: continuing the agent (SIGCONT)');
    signalPids(this.pids(taskId), 'SIGCONT');
    fs.rmSync(f.suspended, { force: true });
    await waitForSocket(f.socket, READY_TIMEOUT_MS);
  }

  async destroy(taskId: string): Promise<void> {
    const f = this.files(taskId);
    // Kill until nothing is left: a process may fork while we look.
    for (let i = 0; i < 50; i++) {
      const pids = this.pids(taskId);
      if (!pids.length) break;
      signalPids(pids, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
    const left = this.pids(taskId);
    if (left.length) throw new VmError(`task ${taskId}: processes ${left.join(', ')} survive SIGKILL`);
    fs.rmSync(f.dir, { recursive: true, force: true });
    this.o.logger.debug({ taskId }, 'local: destroyed');
  }

  async strays(): Promise<number[]> {
    if (!fs.existsSync(this.root)) return [];
    return processesUnder(this.root)
      .filter((p) => p.gone)
      .map((p) => p.pid);
  }

  async list(): Promise<string[]> {
    if (!fs.existsSync(this.root)) return [];
    return fs.readdirSync(this.root).filter((n) => !n.startsWith('.'));
  }
}

/** Resolves once a connection to `socket` succeeds (and closes it). */
async function waitForSocket(socket: string, timeoutMs: number, check?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check?.();
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createConnection(socket);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new VmError(`the sidecar did not listen on ${socket} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
