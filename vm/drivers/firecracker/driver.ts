/**
 * The production driver: Firecracker under its jailer (a chroot of its own, a uid of its own,
 * a cgroup with the VM's limits, a new pid namespace), configured through its REST API, the
 * guest reached over hybrid vsock, suspend and resume by Firecracker's full snapshots. It
 * composes the same resources as the qemu driver: the process supervisor, the task's disk (a
 * raw copy: Firecracker reads only raw files), the guest channel (vsock), the egress link.
 *
 * The jailer forks (--new-pid-ns): the process it started exits at once, and the VMM's real
 * pid is the one it writes to <chroot>/firecracker.pid. That pid (with its start time) is what
 * the driver records, checks and kills, together with everything in the VM's cgroup. Every
 * launch — a boot, a retried boot, a restore — gets a fresh jail: the old one (its device
 * nodes, its sockets, whatever a guest-side VMM left) is removed first, and what the VM keeps
 * lives outside it, in the task's folder, hard-linked into each new jail:
 *
 *   <state>/hosts/<host>/vms/<task>/       (0700, the worker's)
 *     vm.json           spec, uid and cgroup limits (a restore gets the same ones)
 *     vmm.json          the VMM's pid and start time
 *     disk.raw          the task's disk                         0600, the VM's uid
 *     snapshot.state    while suspended: Firecracker's snapshot  0600, the VM's uid
 *     snapshot.mem      while suspended: the guest's memory      0600, the VM's uid
 *     console.log       the guest's console and Firecracker's log
 *   <jail base>/firecracker/<jail id>/root/  (the jailer's; rebuilt at every launch)
 *     vmlinux, initrd.img, rootfs.ext4 (→ disk.raw), run/api.sock, v.sock, firecracker.pid
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../common/logger.js';
import { VsockChannel } from '../../channel/connector.js';
import { EgressLinks } from '../../channel/egress-links.js';
import type { EgressSink } from '../../channel/egress-sink.js';
import { createTaskDisk } from '../../disk.js';
import { type BootInfo, type Progress, type VmDriver, VmError, type VmSpec } from '../../driver.js';
import { type BootArtifacts, bootArtifacts } from '../../image/artifacts.js';
import type { GuestImage } from '../../image/ensure.js';
import type { CgroupLimits, CgroupSystem } from '../../process/cgroup.js';
import { isRunning, kill, recordOf, type VmmRecord } from '../../process/supervisor.js';
import type { UidPool } from '../../process/uids.js';
import { SidecarConnection } from '../../sidecar/client.js';
import { GUEST_ENV } from '../../sidecar/guest-env.js';
import { templateOrCold } from '../../template/boot.js';
import { buildTemplate } from '../../template/build.js';
import { TemplateBuilds } from '../../template/ensure.js';
import { defaultTemplateRoot, type TemplateInputs, templateFor } from '../../template/template.js';
import { FirecrackerApi } from './api.js';

const GUEST_CID = 3;
const MAX_SOCKET_PATH = 107;
/**
 * Firecracker describes its virtio-mmio devices in ACPI tables (since 1.8), which is where
 * Debian's kernel looks for them; `pci=off` would be harmless but is not needed.
 */
export const FIRECRACKER_BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 quiet loglevel=3';

export interface FirecrackerOptions {
  firecrackerBin: string;
  jailerBin: string;
  stateDir: string;
  hostId: string;
  /** The jailer's chroot base; on the task folders' file system (hard links). */
  jailBase?: string;
  image: GuestImage;
  /** A uid per VM; the jailer runs Firecracker as it. */
  uids: UidPool;
  cgroups: CgroupSystem;
  egress?: EgressSink;
  logger?: Logger;
  readyTimeoutMs?: number;
  /** Start VMs from a template (vm/template/): default on. */
  templates?: boolean;
  /**
   * Where templates are kept (default ~/.cache/lia/templates). Their snapshot files are
   * hard-linked into each jail: on another file system than the jail base they are copied
   * into each jail instead, and VMs share none of the template's memory pages.
   */
  templateDir?: string;
}

interface VmRecord {
  spec: VmSpec;
  uid: number;
  limits: CgroupLimits;
  /** The template the VM was started from (its disk is a copy of the template's). */
  template?: { key: string; dir: string };
}

/** A built template: a booted VM's disk and its full snapshot (state, memory). */
export interface FirecrackerTemplate {
  key: string;
  dir: string;
  disk: string;
  state: string;
  mem: string;
  inputs: TemplateInputs;
}

/** The jailer's id: letters, digits and dashes, at most 64. */
export const jailId = (taskId: string): string => taskId.replace(/_/g, '-');

/** The VM's cgroup limits as the jailer's --cgroup arguments, for the host's cgroup version. */
export function cgroupArgs(version: 1 | 2, l: CgroupLimits): string[] {
  const quota = Math.round(l.cpuPercent * 1000);
  const files =
    version === 2
      ? [`cpu.max=${quota} 100000`, `memory.max=${l.memoryBytes}`, `pids.max=${l.pids}`]
      : [
          'cpu.cfs_period_us=100000',
          `cpu.cfs_quota_us=${quota}`,
          `memory.limit_in_bytes=${l.memoryBytes}`,
          `pids.max=${l.pids}`,
        ];
  return files.flatMap((f) => ['--cgroup', f]);
}

export function jailerArgs(
  o: { firecrackerBin: string; jailBase: string; hostId: string },
  taskId: string,
  uid: number,
  cgroupVersion: 1 | 2,
  limits: CgroupLimits,
): string[] {
  return [
    '--id',
    jailId(taskId),
    '--exec-file',
    o.firecrackerBin,
    '--uid',
    String(uid),
    '--gid',
    String(uid),
    '--chroot-base-dir',
    o.jailBase,
    '--cgroup-version',
    String(cgroupVersion),
    '--parent-cgroup',
    `lia/${o.hostId}`,
    ...cgroupArgs(cgroupVersion, limits),
    '--new-pid-ns',
    '--',
    '--api-sock',
    '/run/api.sock',
  ];
}

export class FirecrackerDriver implements VmDriver {
  readonly name = 'firecracker' as const;
  readonly acceleration = 'kvm';
  readonly guestEnv: Record<string, string> = { ...GUEST_ENV };
  readonly artifacts: BootArtifacts;
  private readonly root: string;
  private readonly jailBase: string;
  private readonly links: EgressLinks;

  constructor(private readonly o: FirecrackerOptions) {
    this.artifacts = bootArtifacts(o.image, 'firecracker');
    this.root = path.resolve(o.stateDir, 'hosts', o.hostId, 'vms');
    this.jailBase = path.resolve(o.jailBase ?? path.join(o.stateDir, 'hosts', o.hostId, 'jail'));
    this.links = new EgressLinks({
      sink: o.egress,
      connect: (id) => this.channel(id).connect('egress'),
      logger: o.logger,
    });
  }

  static limits(spec: VmSpec): CgroupLimits {
    // Firecracker's own threads need little beside the guest's vCPUs and memory.
    return { cpuPercent: spec.vcpus * 100 + 50, memoryBytes: (spec.memoryMib + 128) * 2 ** 20, pids: 128 };
  }

  private files(taskId: string) {
    const dir = path.join(this.root, taskId);
    const jail = path.join(this.jailBase, path.basename(this.o.firecrackerBin), jailId(taskId));
    const chroot = path.join(jail, 'root');
    return {
      dir,
      record: path.join(dir, 'vm.json'),
      vmm: path.join(dir, 'vmm.json'),
      disk: path.join(dir, 'disk.raw'),
      state: path.join(dir, 'snapshot.state'),
      mem: path.join(dir, 'snapshot.mem'),
      console: path.join(dir, 'console.log'),
      suspended: path.join(dir, 'suspended'),
      jail,
      chroot,
      api: path.join(chroot, 'run', 'api.sock'),
      vsock: path.join(chroot, 'v.sock'),
      pidFile: path.join(chroot, `${path.basename(this.o.firecrackerBin)}.pid`),
    };
  }

  private cgroup(taskId: string) {
    return { system: this.o.cgroups, rel: `lia/${this.o.hostId}/${jailId(taskId)}` };
  }

  private vmm(taskId: string): VmmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.files(taskId).vmm, 'utf8')) as VmmRecord;
    } catch {
      return undefined;
    }
  }

  /** The recorded VMM runs: the same process (pid and start time), in the VM's cgroup. */
  running(taskId: string): boolean {
    const rec = this.vmm(taskId);
    if (!rec || !isRunning(rec)) return false;
    const cg = this.cgroup(taskId);
    return cg.system.contains(cg.rel, rec.pid);
  }

  private readRecord(taskId: string): VmRecord {
    return JSON.parse(fs.readFileSync(this.files(taskId).record, 'utf8')) as VmRecord;
  }

  private api(taskId: string): FirecrackerApi {
    return new FirecrackerApi(this.files(taskId).api);
  }

  private channel(taskId: string): VsockChannel {
    return new VsockChannel(this.files(taskId).vsock);
  }

  private readyTimeout(): number {
    return this.o.readyTimeoutMs ?? 30_000;
  }

  /** Kills the VMM and everything in its cgroup, removes the jail and the cgroup. */
  private async teardown(taskId: string): Promise<void> {
    const f = this.files(taskId);
    const cg = this.cgroup(taskId);
    await kill(this.vmm(taskId), cg).catch((err: Error) => {
      throw new VmError(`task ${taskId}: ${err.message}`);
    });
    fs.rmSync(f.vmm, { force: true });
    fs.rmSync(f.jail, { recursive: true, force: true });
    if (cg.system.exists(cg.rel)) cg.system.remove(cg.rel);
  }

  /** A fresh jail holding the kernel, the initramfs, the disk and (for a restore) the snapshot. */
  private buildJail(taskId: string, uid: number, snapshot: boolean, template?: FirecrackerTemplate): void {
    const f = this.files(taskId);
    fs.mkdirSync(path.join(f.chroot, 'run'), { recursive: true, mode: 0o700 });
    fs.chownSync(path.join(f.chroot, 'run'), uid, uid);
    const put = (from: string, name: string, mustLink: boolean) => {
      const to = path.join(f.chroot, name);
      try {
        fs.linkSync(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV' || mustLink)
          throw new VmError(
            `putting ${name} into the jail: ${(err as Error).message} (the jail base ${this.jailBase} must be on the file system of ${this.root})`,
            false,
          );
        fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
      }
    };
    put(this.artifacts.kernel.path, 'vmlinux', false);
    put(this.artifacts.initrd, 'initrd.img', false);
    // The disk and the snapshot are the VM's: linked, never copied (one VM, one disk).
    put(f.disk, 'rootfs.ext4', true);
    if (snapshot) {
      put(f.state, 'snapshot.state', true);
      put(f.mem, 'snapshot.mem', true);
    }
    // A template's snapshot (read-only, root's): linked, so every VM of the template maps the
    // same file (Firecracker maps its memory file private: copy-on-write, pages shared).
    if (template) {
      put(template.state, 'template.state', false);
      put(template.mem, 'template.mem', false);
    }
  }

  private async launch(taskId: string, rec: VmRecord, progress: Progress): Promise<void> {
    const f = this.files(taskId);
    progress('starting firecracker under the jailer');
    for (const s of [f.api, f.vsock])
      if (s.length > MAX_SOCKET_PATH)
        throw new VmError(`socket path too long (${s}): use a shorter jail base or LIA__STATE__DIR`, false);
    this.o.cgroups.ensureParents(this.cgroup(taskId).rel);
    const out = fs.openSync(f.console, 'a', 0o600);
    let code: number | null;
    try {
      const jailer = spawn(
        this.o.jailerBin,
        jailerArgs(
          { firecrackerBin: this.o.firecrackerBin, jailBase: this.jailBase, hostId: this.o.hostId },
          taskId,
          rec.uid,
          this.o.cgroups.version,
          rec.limits,
        ),
        { detached: true, stdio: ['ignore', out, out] },
      );
      // With --new-pid-ns the jailer forks the VMM and exits: its exit says the jail is built.
      code = await new Promise<number | null>((resolve) => {
        jailer.once('exit', resolve);
        jailer.once('error', () => resolve(-1));
      });
    } finally {
      fs.closeSync(out);
    }
    const tail = () => fs.readFileSync(f.console, 'utf8').trim().split('\n').slice(-5).join('\n');
    if (code !== 0) throw new VmError(`the jailer failed (exit ${code}): ${tail()}`, false);
    const pid = Number(fs.readFileSync(f.pidFile, 'utf8').trim());
    const record = recordOf(pid);
    if (!record) throw new VmError(`firecracker (pid ${pid}) is not running after the jailer: ${tail()}`);
    fs.writeFileSync(f.vmm, JSON.stringify(record), { mode: 0o600 });
    if (!this.running(taskId))
      throw new VmError(`firecracker (pid ${pid}) is not in the VM's cgroup ${this.cgroup(taskId).rel}`);
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await this.api(taskId).describe();
        return;
      } catch (err) {
        if (!this.running(taskId)) throw new VmError(`firecracker exited at start: ${tail()}`);
        if (Date.now() > deadline)
          throw new VmError(`firecracker's API did not answer within 5 s: ${(err as Error).message}`);
        await sleep(20);
      }
    }
  }

  private async waitForSidecar(taskId: string, progress: Progress, what: string, signal?: AbortSignal) {
    const started = Date.now();
    const deadline = started + this.readyTimeout();
    progress(`${what}: waiting for the guest's sidecar`);
    for (;;) {
      if (signal?.aborted) throw new VmError(`${what}: cancelled`);
      if (!this.running(taskId))
        throw new VmError(`firecracker exited while ${what}${this.consoleTail(taskId)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new VmError(
          `the guest's sidecar did not answer on vsock within ${this.readyTimeout() / 1000} s while ${what}${this.consoleTail(taskId)}`,
        );
      try {
        (await SidecarConnection.open(await this.connect(taskId), Math.min(left, 3000))).close();
        return;
      } catch {
        await sleep(50);
      }
    }
  }

  private consoleTail(taskId: string): string {
    try {
      const t = fs.readFileSync(this.files(taskId).console, 'utf8').trim();
      return t ? `; console:\n${t.split('\n').slice(-15).join('\n')}` : '';
    } catch {
      return '';
    }
  }

  private async attachEgress(taskId: string): Promise<void> {
    await this.links.attach(taskId).catch((err: Error) => {
      throw new VmError(`the guest's egress port: ${err.message}`);
    });
  }

  /** Whether the egress link of a running VM is up (for tests and check-host). */
  egressConnected(taskId: string): boolean {
    return this.links.connected(taskId);
  }

  async adopt(): Promise<void> {
    for (const taskId of await this.list()) {
      if (!this.running(taskId) || fs.existsSync(this.files(taskId).suspended)) continue;
      await this.attachEgress(taskId).catch((err: Error) =>
        this.o.logger?.warn({ taskId, err: err.message }, 'firecracker: cannot re-attach the egress port'),
      );
    }
  }

  async boot(spec: VmSpec, progress: Progress, signal?: AbortSignal): Promise<BootInfo> {
    const f = this.files(spec.taskId);
    const step = () => {
      if (signal?.aborted) throw new VmError('booting: cancelled');
    };
    // A retried boot: a VM that runs is kept; anything else of an earlier attempt (a jail half
    // built, a VMM that never answered) is removed and the boot starts over.
    if (this.running(spec.taskId) && !fs.existsSync(f.suspended)) {
      await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
      if (!this.egressConnected(spec.taskId)) await this.attachEgress(spec.taskId);
      const r = this.readRecord(spec.taskId);
      return r.template ? { from: 'template', template: r.template.key } : { from: 'cold' };
    }
    await this.teardown(spec.taskId);
    step();
    fs.mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    const uid = this.o.uids.claim(spec.taskId);
    return templateOrCold({
      templates: this.o.templates !== false,
      driver: 'firecracker',
      taskId: spec.taskId,
      progress,
      signal,
      logger: this.o.logger,
      fromTemplate: () => this.bootFromTemplate(spec, uid, progress, signal),
      undo: async () => {
        await this.teardown(spec.taskId);
        fs.rmSync(f.disk, { force: true });
      },
      cold: () => this.coldBoot(spec, uid, progress, signal),
    });
  }

  /** Boots the VM from the image, to its sidecar's hello, with its egress attached. */
  private async coldBoot(spec: VmSpec, uid: number, progress: Progress, signal?: AbortSignal) {
    const f = this.files(spec.taskId);
    const step = () => {
      if (signal?.aborted) throw new VmError('booting: cancelled');
    };
    const rec: VmRecord = { spec, uid, limits: FirecrackerDriver.limits(spec) };
    fs.writeFileSync(f.record, JSON.stringify(rec), { mode: 0o600 });
    progress(`booting: ${spec.storageGb} GB disk (raw copy)`);
    await createTaskDisk('raw-copy', this.artifacts.rootfs.path, f.disk, spec.storageGb, {
      uid,
      gid: uid,
    }).catch((err: Error) => {
      throw new VmError(`creating the task's disk: ${err.message}`, false);
    });
    step();
    this.buildJail(spec.taskId, uid, false);
    await this.launch(spec.taskId, rec, progress);
    const api = this.api(spec.taskId);
    await api.putMachineConfig({ vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: false });
    await api.putBootSource({
      kernel_image_path: 'vmlinux',
      initrd_path: 'initrd.img',
      boot_args: FIRECRACKER_BOOT_ARGS,
    });
    await api.putDrive({
      drive_id: 'rootfs',
      path_on_host: 'rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
    });
    // No network interface: the guest's way out is vsock, to the host's egress proxy.
    await api.putVsock({ guest_cid: GUEST_CID, uds_path: 'v.sock' });
    await api.instanceStart();
    await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
    step();
    await this.attachEgress(spec.taskId);
    this.o.logger?.info({ taskId: spec.taskId, uid }, 'firecracker: booted');
  }

  /** The template for VMs of this size: its key and inputs (built or not). */
  templateFor(spec: Pick<VmSpec, 'vcpus' | 'memoryMib' | 'storageGb'>): {
    key: string;
    inputs: TemplateInputs;
  } {
    const a = this.artifacts;
    const vmm = vmmIdentity(this.o.firecrackerBin);
    return templateFor({ driver: 'firecracker', image: a.hash, profile: a.profile, vmm, accel: 'kvm' }, spec);
  }

  private templateFiles(dir: string) {
    return {
      disk: path.join(dir, 'disk.raw'),
      state: path.join(dir, 'snapshot.state'),
      mem: path.join(dir, 'snapshot.mem'),
    };
  }

  private readonly templateBuilds = new TemplateBuilds<FirecrackerTemplate>();

  /**
   * The template for VMs of this size, built where missing (one build at a time per machine): a
   * VM booted to its sidecar's hello, paused, a full snapshot taken (`/snapshot/create`), its
   * disk kept beside it.
   */
  async ensureTemplate(
    spec: Pick<VmSpec, 'vcpus' | 'memoryMib' | 'storageGb'>,
    progress: Progress,
  ): Promise<FirecrackerTemplate> {
    const { key, inputs } = this.templateFor(spec);
    const root = this.o.templateDir ?? defaultTemplateRoot();
    const template = (dir: string) => ({ key, dir, inputs, ...this.templateFiles(dir) });
    return this.templateBuilds.ensure(root, key, progress, {
      found: (t) => template(t.dir),
      build: async () => {
        const { dir } = await buildTemplate({
          root,
          key,
          inputs,
          progress,
          logger: this.o.logger,
          destroy: (id) => this.destroy(id),
          boot: (vm, _work, say) => this.bootTemplateVm(vm, say),
          snapshot: (id, work) => this.snapshotTemplateVm(id, work),
        });
        return template(dir);
      },
    });
  }

  private async bootTemplateVm(spec: VmSpec, say: Progress): Promise<void> {
    fs.mkdirSync(this.files(spec.taskId).dir, { recursive: true, mode: 0o700 });
    await this.coldBoot(spec, this.o.uids.claim(spec.taskId), say);
  }

  /** The template VM's full snapshot and its disk, moved out of its jail and folder into `work`. */
  private async snapshotTemplateVm(id: string, work: string): Promise<void> {
    const t = this.templateFiles(work);
    const f = this.files(id);
    this.links.detach(id);
    const api = this.api(id);
    await api.pause();
    await api.createSnapshot('snapshot.state', 'snapshot.mem');
    fs.renameSync(path.join(f.chroot, 'snapshot.state'), t.state);
    fs.renameSync(path.join(f.chroot, 'snapshot.mem'), t.mem);
    await this.teardown(id);
    fs.renameSync(f.disk, t.disk);
    // Read-only from now on, and readable by every VM's uid.
    for (const file of [t.disk, t.state, t.mem]) {
      fs.chownSync(file, 0, 0);
      fs.chmodSync(file, 0o644);
    }
  }

  /**
   * A new VM from the template: its own disk (a copy of the template's: a reflink where the file
   * system has them), a clean jail with the template's snapshot linked in, `/snapshot/load` with
   * the template's memory file as its backend (mapped private by Firecracker).
   */
  private async bootFromTemplate(
    spec: VmSpec,
    uid: number,
    progress: Progress,
    signal?: AbortSignal,
  ): Promise<string> {
    const f = this.files(spec.taskId);
    const t = await this.ensureTemplate(spec, progress);
    if (signal?.aborted) throw new VmError('booting: cancelled');
    const rec: VmRecord = {
      spec,
      uid,
      limits: FirecrackerDriver.limits(spec),
      template: { key: t.key, dir: t.dir },
    };
    fs.writeFileSync(f.record, JSON.stringify(rec), { mode: 0o600 });
    progress(`booting: from template ${t.key.slice(0, 8)}: a copy of its disk`);
    await createTaskDisk('raw-copy', t.disk, f.disk, spec.storageGb, { uid, gid: uid });
    this.buildJail(spec.taskId, uid, false, t);
    await this.launch(spec.taskId, rec, progress);
    progress(`booting: loading template ${t.key.slice(0, 8)}`);
    await this.api(spec.taskId).loadSnapshot('template.state', 'template.mem', true);
    await this.waitForSidecar(spec.taskId, progress, 'restoring the template', signal);
    await this.attachEgress(spec.taskId);
    // The names can go from the jail (Firecracker keeps its mapping); the template stays.
    for (const n of ['template.state', 'template.mem']) fs.rmSync(path.join(f.chroot, n), { force: true });
    this.o.logger?.info(
      { taskId: spec.taskId, uid, template: t.key },
      'firecracker: started from the template',
    );
    return t.key;
  }

  connect(taskId: string): Promise<Duplex> {
    return this.channel(taskId)
      .connect('session')
      .catch((e: Error) => {
        throw new VmError(`task ${taskId}: cannot reach the VM's sidecar over vsock: ${e.message}`);
      });
  }

  async suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }> {
    const f = this.files(taskId);
    const size = () => fs.statSync(f.state).size + fs.statSync(f.mem).size;
    if (fs.existsSync(f.suspended) && !this.running(taskId)) return { snapshotBytes: size() };
    if (!this.running(taskId))
      throw new VmError(`task ${taskId}: firecracker is not running, nothing to suspend`, false);
    this.links.detach(taskId);
    const api = this.api(taskId);
    progress('suspending: pausing the VM');
    await api.pause();
    progress('suspending: writing the snapshot');
    for (const n of ['snapshot.state', 'snapshot.mem']) fs.rmSync(path.join(f.chroot, n), { force: true });
    await api.createSnapshot('snapshot.state', 'snapshot.mem');
    // Out of the jail before it goes: the task's folder keeps what a restore needs.
    fs.renameSync(path.join(f.chroot, 'snapshot.state'), f.state);
    fs.renameSync(path.join(f.chroot, 'snapshot.mem'), f.mem);
    fs.writeFileSync(f.suspended, '');
    // No VMM is left, with or without its RAM: a suspended task holds no memory.
    await this.teardown(taskId);
    return { snapshotBytes: size() };
  }

  async restore(taskId: string, progress: Progress, signal?: AbortSignal): Promise<void> {
    const f = this.files(taskId);
    // `suspended` goes only once the restored guest answers: until then a retry starts over.
    if (!fs.existsSync(f.suspended)) {
      if (this.running(taskId)) {
        await this.waitForSidecar(taskId, progress, 'restoring', signal);
        if (!this.egressConnected(taskId)) await this.attachEgress(taskId);
        return;
      }
      throw new VmError(`task ${taskId}: the VM is neither suspended nor running on this host`, false);
    }
    if (!fs.existsSync(f.state) || !fs.existsSync(f.mem))
      throw new VmError(`task ${taskId}: no snapshot to restore`, false);
    // Whatever an earlier attempt left (a VMM, a jail): gone first. Never two VMMs on one disk.
    await this.teardown(taskId);
    if (signal?.aborted) throw new VmError('restoring: cancelled');
    const rec = this.readRecord(taskId);
    this.buildJail(taskId, rec.uid, true);
    // The same uid and the same cgroup limits as at boot (vm.json).
    await this.launch(taskId, rec, progress);
    progress('restoring: loading the snapshot');
    try {
      await this.api(taskId).loadSnapshot('snapshot.state', 'snapshot.mem', true);
    } catch (err) {
      await this.teardown(taskId);
      throw new VmError(
        `task ${taskId}: firecracker did not load the snapshot (it is kept): ${(err as Error).message}`,
      );
    }
    await this.waitForSidecar(taskId, progress, 'restoring', signal);
    await this.attachEgress(taskId);
    // Firecracker maps the memory file privately: its names can go, the mapping stays.
    for (const n of ['snapshot.state', 'snapshot.mem']) fs.rmSync(path.join(f.chroot, n), { force: true });
    fs.rmSync(f.suspended, { force: true });
    fs.rmSync(f.state, { force: true });
    fs.rmSync(f.mem, { force: true });
  }

  async destroy(taskId: string): Promise<void> {
    this.links.detach(taskId);
    await this.teardown(taskId);
    await this.o.egress?.close?.(taskId);
    this.o.uids.release(taskId);
    fs.rmSync(this.files(taskId).dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    return fs.existsSync(this.root) ? fs.readdirSync(this.root) : [];
  }

  /** VMMs in a cgroup of this host whose task folder is gone. */
  async strays(): Promise<number[]> {
    const known = new Set((await this.list()).map(jailId));
    const cg = this.o.cgroups;
    return cg
      .children(`lia/${this.o.hostId}`)
      .filter((id) => !known.has(id))
      .flatMap((id) => cg.pids(`lia/${this.o.hostId}/${id}`));
  }
}

/** The VMM binary's identity for a template's key: its path, size and modification time. */
function vmmIdentity(bin: string): string {
  try {
    const st = fs.statSync(bin);
    return createHash('sha256').update(`${bin} ${st.size} ${st.mtimeMs}`).digest('hex').slice(0, 16);
  } catch {
    return bin;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
