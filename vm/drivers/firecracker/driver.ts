/**
 * The production driver: Firecracker under its jailer (chroot, unprivileged uid/gid, cgroups),
 * configured through its REST API, the sidecar reached over hybrid vsock, suspend and resume by
 * Firecracker's full snapshots. Needs working KVM: see vm/setup.sh for a host's set-up.
 *
 * Layout per task (the jailer's chroot):
 *   <chrootBase>/firecracker/<jail id>/root/{vmlinux, rootfs.ext4, run/api.sock, v.sock,
 *                                            snapshot.state, snapshot.mem}
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../common/logger.js';
import { isAlive, sessionPids, signalPids } from '../../../system/procs.js';
import { connectVsock } from '../../channel/vsock.js';
import { type Progress, type VmDriver, VmError, type VmSpec } from '../../driver.js';
import { FirecrackerApi } from './api.js';

export const SIDECAR_VSOCK_PORT = 1024;
const GUEST_CID = 3;

export interface FirecrackerOptions {
  firecrackerBin: string;
  jailerBin: string;
  chrootBase: string;
  kernelPath: string;
  rootfsPath: string;
  uid: number;
  gid: number;
  logger?: Logger;
}

/** The jailer's id allows letters, digits and dashes only. */
export const jailId = (taskId: string): string => taskId.replace(/_/g, '-');

export function jailerArgs(o: FirecrackerOptions, taskId: string, spec?: VmSpec): string[] {
  const cgroups = spec
    ? [
        '--cgroup',
        `cpu.max=${spec.vcpus * 100000} 100000`,
        '--cgroup',
        `memory.max=${(spec.memoryMib + 64) * 1024 * 1024}`,
      ]
    : [];
  return [
    '--id',
    jailId(taskId),
    '--exec-file',
    o.firecrackerBin,
    '--uid',
    String(o.uid),
    '--gid',
    String(o.gid),
    '--chroot-base-dir',
    o.chrootBase,
    '--cgroup-version',
    '2',
    ...cgroups,
    '--new-pid-ns',
    '--',
    '--api-sock',
    '/run/api.sock',
  ];
}

export class FirecrackerDriver implements VmDriver {
  readonly name = 'firecracker' as const;
  readonly acceleration = 'kvm';

  constructor(private readonly o: FirecrackerOptions) {}

  private root(taskId: string): string {
    return path.join(this.o.chrootBase, path.basename(this.o.firecrackerBin), jailId(taskId), 'root');
  }
  private jailDir(taskId: string): string {
    return path.dirname(this.root(taskId));
  }
  private api(taskId: string): FirecrackerApi {
    return new FirecrackerApi(path.join(this.root(taskId), 'run', 'api.sock'));
  }
  private pidFile(taskId: string): string {
    return path.join(this.jailDir(taskId), 'lia.pid');
  }

  private async launch(taskId: string, spec: VmSpec | undefined, progress: Progress): Promise<void> {
    progress('booting: starting firecracker under the jailer');
    const child = spawn(this.o.jailerBin, jailerArgs(this.o, taskId, spec), {
      detached: true,
      stdio: 'ignore',
    });
    child.unref();
    fs.writeFileSync(this.pidFile(taskId), String(child.pid));
    const sock = path.join(this.root(taskId), 'run', 'api.sock');
    const deadline = Date.now() + 5000;
    while (!fs.existsSync(sock)) {
      if (Date.now() > deadline)
        throw new VmError(`firecracker did not open its API socket ${sock} within 5 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async boot(spec: VmSpec, progress: Progress): Promise<void> {
    if ((await this.presence(spec.taskId)) === 'running') return;
    const root = this.root(spec.taskId);
    fs.mkdirSync(path.join(root, 'run'), { recursive: true });
    progress('booting: preparing the disk');
    fs.copyFileSync(this.o.kernelPath, path.join(root, 'vmlinux'));
    // Copy-on-write where the file system can (reflink), sparse otherwise; grown to the task's size.
    await run('cp', ['--reflink=auto', '--sparse=always', this.o.rootfsPath, path.join(root, 'rootfs.ext4')]);
    fs.truncateSync(path.join(root, 'rootfs.ext4'), spec.storageGb * 1024 ** 3);
    await run('resize2fs', ['-f', path.join(root, 'rootfs.ext4')]).catch(() => {});
    for (const f of ['vmlinux', 'rootfs.ext4', 'run'])
      fs.chownSync(path.join(root, f), this.o.uid, this.o.gid);
    await this.launch(spec.taskId, spec, progress);
    const api = this.api(spec.taskId);
    await api.putMachineConfig({ vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: false });
    await api.putBootSource({
      kernel_image_path: 'vmlinux',
      boot_args: 'console=ttyS0 reboot=k panic=1 pci=off quiet lia.channel=vsock',
    });
    await api.putDrive({
      drive_id: 'rootfs',
      path_on_host: 'rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
    });
    await api.putVsock({ guest_cid: GUEST_CID, uds_path: 'v.sock' });
    await api.instanceStart();
    progress('booting: waiting for sidecar hello');
    await this.waitForSidecar(spec.taskId, 30_000);
  }

  private async waitForSidecar(taskId: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        (await this.connect(taskId)).destroy();
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new VmError(`the sidecar did not answer on vsock within ${timeoutMs} ms: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  connect(taskId: string): Promise<Duplex> {
    return connectVsock(path.join(this.root(taskId), 'v.sock'), SIDECAR_VSOCK_PORT);
  }

  async suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }> {
    const api = this.api(taskId);
    progress('suspending: pausing the VM');
    await api.pause();
    progress('suspending: writing the snapshot');
    await api.createSnapshot('snapshot.state', 'snapshot.mem');
    this.kill(taskId);
    const root = this.root(taskId);
    return {
      snapshotBytes:
        fs.statSync(path.join(root, 'snapshot.state')).size +
        fs.statSync(path.join(root, 'snapshot.mem')).size,
    };
  }

  async restore(taskId: string, progress: Progress): Promise<void> {
    fs.rmSync(path.join(this.root(taskId), 'run', 'api.sock'), { force: true });
    fs.rmSync(path.join(this.root(taskId), 'v.sock'), { force: true });
    await this.launch(taskId, undefined, progress);
    progress('restoring: loading the snapshot');
    await this.api(taskId).loadSnapshot('snapshot.state', 'snapshot.mem', true);
    await this.waitForSidecar(taskId, 15_000);
  }

  private kill(taskId: string): void {
    const pid = Number(fs.readFileSync(this.pidFile(taskId), 'utf8'));
    // The jailer execs firecracker in a new session: kill the whole session.
    if (pid && isAlive(pid)) signalPids([pid, ...sessionPids(pid)], 'SIGKILL');
  }

  async destroy(taskId: string): Promise<void> {
    if (fs.existsSync(this.pidFile(taskId))) this.kill(taskId);
    fs.rmSync(this.jailDir(taskId), { recursive: true, force: true });
  }

  private async presence(taskId: string): Promise<'absent' | 'running' | 'suspended'> {
    if (!fs.existsSync(this.jailDir(taskId))) return 'absent';
    if (fs.existsSync(path.join(this.root(taskId), 'snapshot.state'))) {
      const pid = fs.existsSync(this.pidFile(taskId))
        ? Number(fs.readFileSync(this.pidFile(taskId), 'utf8'))
        : 0;
      return pid && isAlive(pid) ? 'running' : 'suspended';
    }
    return 'running';
  }

  async list(): Promise<string[]> {
    const dir = path.join(this.o.chrootBase, path.basename(this.o.firecrackerBin));
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).map((id) => id.replace(/^t-/, 't_'));
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}
