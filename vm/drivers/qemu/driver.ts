/**
 * The `qemu` driver: a real VM per task, KVM where a vCPU really runs, software emulation (TCG)
 * otherwise. QEMU runs daemonized, so a worker restart leaves the VM alone; everything the
 * driver needs is on disk under the host's state folder:
 *   disk.qcow2    copy-on-write overlay of the cached base image
 *   serial.sock   the virtio-serial port `lia.sidecar` (QEMU listens; one host session at a time)
 *   qmp.sock      QEMU's control socket
 *   console.log   the guest's serial console (boot errors end up here)
 *   state.bin     the machine state while suspended (pause + migrate to a file; QEMU exits)
 * Network: user-mode with restrict=on — the guest reaches nothing but 10.0.2.100:3128, which
 * QEMU forwards to this task's listener of the host's egress proxy.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../common/logger.js';
import { isAlive, processesUnder, readPidFile, signalPids } from '../../../system/procs.js';
import type { Progress, VmDriver, VmSpec } from '../../driver.js';
import { VmError } from '../../driver.js';
import type { GuestImage } from '../../image/ensure.js';
import { SidecarConnection } from '../../sidecar/client.js';
import { Qmp } from './qmp.js';

/** Where the guest finds the egress proxy (QEMU forwards it to the host's listener). */
export const GUEST_PROXY = { host: '10.0.2.100', port: 3128 };
const MAX_SOCKET_PATH = 107;

/**
 * The host TSC's rate in kHz, where the CPU says it is constant. Under TCG the guest's TSC is
 * the host's, and telling the guest kernel its rate skips a PIT calibration that, on a busy
 * host, sometimes fails — after which this kernel hangs before init (seen 1 boot in 8 here).
 */
export function hostTscKhz(cpuinfo = readCpuinfo()): number | undefined {
  if (!/\bconstant_tsc\b/.test(cpuinfo)) return undefined;
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

function readCpuinfo(): string {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

export function kernelCommandLine(accel: 'kvm' | 'tcg', tscKhz: number | undefined): string {
  const base = 'console=ttyS0 quiet loglevel=3 panic=-1';
  // With KVM the guest has kvmclock; only emulation needs the rate spelled out.
  return accel === 'tcg' && tscKhz ? `${base} tsc_early_khz=${tscKhz}` : base;
}

export interface EgressPorts {
  open(taskId: string, port?: number): Promise<number>;
  close(taskId: string): Promise<void>;
}

export interface QemuDriverOptions {
  stateDir: string;
  hostId: string;
  image: GuestImage;
  accel: 'kvm' | 'tcg';
  logger: Logger;
  egress?: EgressPorts;
  /** How long a boot or restore may take before the sidecar answers (TCG is slow). */
  readyTimeoutMs?: number;
}

interface VmRecord {
  spec: VmSpec;
  proxyPort: number;
}

export class QemuDriver implements VmDriver {
  readonly name = 'qemu' as const;
  readonly acceleration: string;
  readonly guestEnv: Record<string, string>;
  private readonly root: string;

  constructor(private readonly o: QemuDriverOptions) {
    const proxy = `http://${GUEST_PROXY.host}:${GUEST_PROXY.port}`;
    this.guestEnv = {
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      // The model API is the proxy itself (path-only requests), not something to go through it.
      NO_PROXY: `localhost,127.0.0.1,${GUEST_PROXY.host}`,
      no_proxy: `localhost,127.0.0.1,${GUEST_PROXY.host}`,
      ANTHROPIC_BASE_URL: proxy,
      HOME: '/root',
    };
    this.acceleration = o.accel;
    this.root = path.resolve(o.stateDir, 'hosts', o.hostId, 'vms');
  }

  /**
   * After a worker restart: the VMs kept running, but their egress listeners lived in the old
   * process. Re-open each at the port its QEMU forwards to.
   */
  async adopt(): Promise<void> {
    for (const taskId of await this.list()) {
      const f = this.files(taskId);
      if (!fs.existsSync(f.record)) continue;
      const rec = JSON.parse(fs.readFileSync(f.record, 'utf8')) as VmRecord;
      await this.o.egress
        ?.open(taskId, rec.proxyPort)
        .catch((err: Error) =>
          this.o.logger.warn({ taskId, err: err.message }, 'qemu: cannot re-open the egress listener'),
        );
    }
  }

  private files(taskId: string) {
    const dir = path.join(this.root, taskId);
    return {
      dir,
      disk: path.join(dir, 'disk.qcow2'),
      serial: path.join(dir, 'serial.sock'),
      qmp: path.join(dir, 'qmp.sock'),
      pid: path.join(dir, 'qemu.pid'),
      console: path.join(dir, 'console.log'),
      state: path.join(dir, 'state.bin'),
      record: path.join(dir, 'vm.json'),
      suspended: path.join(dir, 'suspended'),
    };
  }

  private readyTimeout(): number {
    return this.o.readyTimeoutMs ?? (this.o.accel === 'kvm' ? 30_000 : 300_000);
  }

  /** QEMU's pid, if that process is alive and really QEMU (pids get reused). */
  private qemuPid(taskId: string): number | undefined {
    const pid = readPidFile(this.files(taskId).pid);
    if (!pid || !isAlive(pid)) return undefined;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes('qemu-system') && cmd.includes(this.files(taskId).dir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private args(taskId: string, rec: VmRecord, incoming?: string): string[] {
    const f = this.files(taskId);
    const { spec } = rec;
    const forward = `guestfwd=tcp:${GUEST_PROXY.host}:${GUEST_PROXY.port}-cmd:socat STDIO TCP:127.0.0.1:${rec.proxyPort}`;
    return [
      '-name',
      `lia-${taskId}`,
      '-M',
      'microvm,x-option-roms=off,rtc=on',
      ...(this.o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
      '-m',
      String(spec.memoryMib),
      '-smp',
      String(spec.vcpus),
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-kernel',
      this.o.image.kernel,
      '-initrd',
      this.o.image.initrd,
      '-append',
      kernelCommandLine(this.o.accel, hostTscKhz()),
      '-serial',
      `file:${f.console}`,
      '-drive',
      `if=none,id=root,file=${f.disk},format=qcow2,cache=writeback`,
      '-device',
      'virtio-blk-device,drive=root',
      '-device',
      'virtio-serial-device,max_ports=2',
      '-chardev',
      `socket,id=sidecar,path=${f.serial},server=on,wait=off`,
      '-device',
      'virtserialport,chardev=sidecar,name=lia.sidecar',
      '-netdev',
      `user,id=net0,restrict=on,ipv6=off,${forward}`,
      '-device',
      'virtio-net-device,netdev=net0',
      '-qmp',
      `unix:${f.qmp},server=on,wait=off`,
      '-pidfile',
      f.pid,
      '-daemonize',
      ...(incoming ? ['-incoming', incoming] : []),
    ];
  }

  private async launch(taskId: string, rec: VmRecord, incoming?: string): Promise<void> {
    const f = this.files(taskId);
    for (const s of [f.serial, f.qmp, f.pid]) fs.rmSync(s, { force: true });
    const child = spawn('qemu-system-x86_64', this.args(taskId, rec, incoming), {
      cwd: f.dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d.toString();
    });
    // With -daemonize the parent exits once the VM is set up; a failure before that is ours.
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0)
      throw new VmError(
        `QEMU did not start (exit ${code}): ${err.trim().slice(-800) || 'no message'}`,
        false,
      );
  }

  /** Connects to the guest's sidecar and waits for its hello: the VM is usable. */
  private async waitForSidecar(
    taskId: string,
    progress: Progress,
    what: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const started = Date.now();
    const deadline = started + this.readyTimeout();
    const ticker = setInterval(
      () =>
        progress(`${what}: waiting for the guest's sidecar (${Math.round((Date.now() - started) / 1000)} s)`),
      2000,
    );
    try {
      for (;;) {
        if (signal?.aborted) throw new VmError(`${what}: cancelled`);
        if (!this.qemuPid(taskId)) throw new VmError(`QEMU exited while ${what}${this.consoleTail(taskId)}`);
        const left = deadline - Date.now();
        if (left <= 0)
          throw new VmError(
            `the guest's sidecar did not answer within ${this.readyTimeout() / 1000} s while ${what}${this.consoleTail(taskId)}`,
          );
        try {
          const conn = await SidecarConnection.open(await this.connect(taskId), Math.min(left, 3000));
          conn.close();
          return;
        } catch {
          // Not up yet (or QEMU died: checked above).
        }
      }
    } finally {
      clearInterval(ticker);
    }
  }

  private consoleTail(taskId: string): string {
    try {
      const text = fs.readFileSync(this.files(taskId).console, 'utf8').trim();
      return text ? `; guest console:\n${text.split('\n').slice(-15).join('\n')}` : '';
    } catch {
      return '';
    }
  }

  async boot(spec: VmSpec, progress: Progress, signal?: AbortSignal): Promise<void> {
    const f = this.files(spec.taskId);
    const step = () => {
      if (signal?.aborted) throw new VmError('booting: cancelled');
    };
    if (this.qemuPid(spec.taskId) && !fs.existsSync(f.suspended)) {
      await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
      return;
    }
    step();
    fs.mkdirSync(f.dir, { recursive: true });
    if (f.serial.length > MAX_SOCKET_PATH)
      throw new VmError(
        `socket path too long (${f.serial.length} > ${MAX_SOCKET_PATH}): use a shorter LIA__STATE__DIR`,
        false,
      );
    const proxyPort = (await this.o.egress?.open(spec.taskId)) ?? 9;
    const rec: VmRecord = { spec, proxyPort };
    fs.writeFileSync(f.record, JSON.stringify(rec));
    fs.rmSync(f.disk, { force: true });
    progress(`booting: ${spec.storageGb} GB copy-on-write disk`);
    await runQemuImg([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      'qcow2',
      '-b',
      this.o.image.rootfs,
      f.disk,
      `${spec.storageGb}G`,
    ]);
    step();
    progress(`booting: QEMU (${this.o.accel}), ${spec.vcpus} vCPU, ${spec.memoryMib} MiB`);
    fs.writeFileSync(f.console, '');
    await this.launch(spec.taskId, rec);
    await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
    this.o.logger.info({ taskId: spec.taskId, accel: this.o.accel }, 'qemu: booted');
  }

  async connect(taskId: string): Promise<Duplex> {
    const f = this.files(taskId);
    return new Promise((resolve, reject) => {
      const s = net.createConnection(f.serial);
      s.once('connect', () => resolve(s));
      s.once('error', (e) =>
        reject(new VmError(`task ${taskId}: cannot reach the VM's serial port: ${e.message}`)),
      );
    });
  }

  async suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }> {
    const f = this.files(taskId);
    if (fs.existsSync(f.suspended) && !this.qemuPid(taskId))
      return { snapshotBytes: fs.statSync(f.state).size };
    const pid = this.qemuPid(taskId);
    if (!pid) throw new VmError(`task ${taskId}: QEMU is not running, nothing to suspend`, false);
    const qmp = await Qmp.connect(f.qmp);
    try {
      progress('suspending: pausing the VM');
      await qmp.execute('stop');
      // No bandwidth cap: the VM is paused, the only goal is to be done.
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 2 ** 30 });
      fs.rmSync(f.state, { force: true });
      progress('suspending: writing the machine state');
      await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(f.state)}` });
      for (;;) {
        const st = await qmp.execute<{
          status?: string;
          'error-desc'?: string;
          ram?: { transferred?: number };
        }>('query-migrate');
        if (st.status === 'completed') break;
        if (st.status === 'failed' || st.status === 'cancelled')
          throw new VmError(`task ${taskId}: writing the VM state failed: ${st['error-desc'] ?? st.status}`);
        progress(`suspending: ${((st.ram?.transferred ?? 0) / 2 ** 20).toFixed(0)} MiB written`);
        await sleep(20);
      }
      fs.writeFileSync(f.suspended, '');
      await qmp.execute('quit').catch(() => {});
    } finally {
      qmp.close();
    }
    await waitForExit(pid, 10_000);
    return { snapshotBytes: fs.statSync(f.state).size };
  }

  async restore(taskId: string, progress: Progress, signal?: AbortSignal): Promise<void> {
    const f = this.files(taskId);
    // `suspended` goes only once the restored guest answers: until then a retry starts over.
    if (!fs.existsSync(f.suspended)) {
      if (this.qemuPid(taskId)) return this.waitForSidecar(taskId, progress, 'restoring', signal);
      throw new VmError(`task ${taskId}: the VM is neither suspended nor running on this host`, false);
    }
    if (!fs.existsSync(f.state)) throw new VmError(`task ${taskId}: no saved VM state to restore`, false);
    // A QEMU left by an earlier attempt (a worker that died mid-restore, a cancelled one) is
    // stopped first: the state file is still whole, and two VMs must never run one disk.
    const stale = this.qemuPid(taskId);
    if (stale) {
      progress('restoring: stopping the QEMU of an earlier attempt');
      signalPids([stale], 'SIGKILL');
      await waitForExit(stale, 10_000);
    }
    if (signal?.aborted) throw new VmError('restoring: cancelled');
    const rec = JSON.parse(fs.readFileSync(f.record, 'utf8')) as VmRecord;
    // Same egress port as before: the guest's forwarding rule is part of the VM's set-up.
    rec.proxyPort = (await this.o.egress?.open(taskId, rec.proxyPort)) ?? rec.proxyPort;
    progress('restoring: loading the machine state');
    await this.launch(taskId, rec, `exec:cat ${shellQuote(f.state)}`);
    try {
      const qmp = await Qmp.connect(f.qmp);
      try {
        for (;;) {
          const st = await qmp.execute<{ status: string }>('query-status');
          if (st.status === 'running') break;
          if (st.status !== 'inmigrate') {
            // The source was paused when its state was written: the copy stays paused until told.
            await qmp.execute('cont');
            break;
          }
          await sleep(10);
        }
      } finally {
        qmp.close();
      }
    } catch (err) {
      if (this.qemuPid(taskId)) throw err;
      // QEMU refused the state file and exited (its message went with its closed stderr).
      throw new VmError(
        `task ${taskId}: QEMU exited while loading the saved machine state (the snapshot may be damaged; it is kept)`,
      );
    }
    await this.waitForSidecar(taskId, progress, 'restoring', signal);
    fs.rmSync(f.suspended, { force: true });
    fs.rmSync(f.state, { force: true });
  }

  async destroy(taskId: string): Promise<void> {
    const f = this.files(taskId);
    const pid = this.qemuPid(taskId);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      await waitForExit(pid, 10_000);
    }
    await this.o.egress?.close(taskId);
    fs.rmSync(f.dir, { recursive: true, force: true });
  }

  async strays(): Promise<number[]> {
    if (!fs.existsSync(this.root)) return [];
    return processesUnder(this.root)
      .filter((p) => p.gone)
      .map((p) => p.pid);
  }

  async list(): Promise<string[]> {
    return fs.existsSync(this.root) ? fs.readdirSync(this.root) : [];
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new VmError(`QEMU (pid ${pid}) did not exit`);
    await sleep(10);
  }
}

function runQemuImg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('qemu-img', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d.toString();
    });
    p.on('error', (e) => reject(new VmError(`qemu-img: ${e.message}`, false)));
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new VmError(`qemu-img failed: ${err.trim()}`, false)),
    );
  });
}
