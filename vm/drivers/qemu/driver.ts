/**
 * The `qemu` driver: a real VM per task, KVM where a vCPU really runs, software emulation (TCG)
 * otherwise — and then QEMU itself is no security boundary, which the driver says wherever it
 * names its acceleration. It composes the VM layer's resources:
 *   process   QEMU started detached (a worker restart leaves it running) into the VM's cgroup,
 *             as the VM's own uid, under `-sandbox` (vm/process/)
 *   disk      a qcow2 overlay of the image (or, for the Firecracker artifacts, a raw copy)
 *   channel   two virtio-serial ports: the agent's session and the egress streams (vm/channel/)
 *   egress    the egress link: every connection the guest opens reaches the host's proxy
 *   snapshot  pause, the machine state written over a Unix socket to a file, QEMU gone
 *
 * Per task, under <state>/hosts/<host>/vms/<task>/ (0700), the worker's alone:
 *   vm.json       what the VM is (spec, uid, profile)              0600
 *   vmm.json      QEMU's pid and start time                       0600
 *   disk.qcow2    the task's disk (disk.raw for a raw copy)         0600, the VM's uid
 *   console.log   the guest's serial console (boot errors)        0600
 *   qemu.log      QEMU's own messages                             0600
 *   state.bin     the machine state while suspended               0600
 * and QEMU's sockets (qmp, session, egress; migrate while suspending) in a folder the VM's uid
 * owns (0700): /run/lia/<state>-<host>/<task>/ when Lia runs as root (QEMU, as the VM's uid,
 * could not pass through a private state folder), <task>/run/ otherwise.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../common/logger.js';
import { processesUnder } from '../../../system/procs.js';
import { SerialChannel } from '../../channel/connector.js';
import { EgressLinks } from '../../channel/egress-links.js';
import type { EgressSink } from '../../channel/egress-sink.js';
import { createTaskDisk } from '../../disk.js';
import type { BootInfo, Progress, VmDriver, VmSpec } from '../../driver.js';
import { VmError } from '../../driver.js';
import { type BootArtifacts, type BootProfile, bootArtifacts } from '../../image/artifacts.js';
import type { GuestImage } from '../../image/ensure.js';
import type { CgroupLimits, CgroupSystem } from '../../process/cgroup.js';
import { isRunning, kill, launch, type VmmRecord } from '../../process/supervisor.js';
import type { UidPool } from '../../process/uids.js';
import { SidecarConnection } from '../../sidecar/client.js';
import { GUEST_ENV } from '../../sidecar/guest-env.js';
import { templateOrCold } from '../../template/boot.js';
import { buildTemplate } from '../../template/build.js';
import { TemplateBuilds } from '../../template/ensure.js';
import { sealedMemory } from '../../template/sealed-memory.js';
import { defaultTemplateRoot, type TemplateInputs, templateFor } from '../../template/template.js';
import { hostTscKhz, type MemoryMode, qemuArgs, TCG_TB_MIB } from './args.js';
import { Qmp } from './qmp.js';

export { hostTscKhz, kernelCommandLine } from './args.js';

export const TCG_WARNING = 'software emulation: not a security boundary';
const MAX_SOCKET_PATH = 107;

export interface QemuDriverOptions {
  stateDir: string;
  hostId: string;
  image: GuestImage;
  accel: 'kvm' | 'tcg';
  logger: Logger;
  /** Where the guests' connections go (the host's egress proxy). */
  egress?: EgressSink;
  /** Which artifacts to boot (default `qemu`; `firecracker` boots Firecracker's under microvm). */
  profile?: BootProfile;
  /** A uid per VM (when Lia runs as root); without it QEMU runs as Lia's own user. */
  uids?: UidPool;
  /** A cgroup per VM; without it, none (check-host reports why). */
  cgroups?: CgroupSystem;
  /** How long a boot or restore may take before the sidecar answers (TCG is slow). */
  readyTimeoutMs?: number;
  /** Start VMs from a template (vm/template/): default on. */
  templates?: boolean;
  /** Where templates are cached (default ~/.cache/lia/templates). */
  templateDir?: string;
  /**
   * VMs restored from the template ahead of demand, of this size, ready to be taken by a task
   * (`startPool()`); 0 or absent: none.
   */
  pool?: { size: number; spec: Pick<VmSpec, 'vcpus' | 'memoryMib' | 'storageGb'> };
}

/** Spare VMs are named so: never a task id (the reconciler leaves them alone). */
export const SPARE_PREFIX = 'spare-';

interface VmRecord {
  spec: VmSpec;
  profile: BootProfile;
  uid?: number;
  /** The template the VM was started from: its disk is under the task's, its RAM block named `mem`. */
  template?: { key: string; dir: string };
  /**
   * The image's raw disk under the task's (or its template's) disk, as it was when the disk was
   * made: a restore after the image was rebuilt keeps the image its disk was written over.
   */
  base?: string;
  /** The VM's cgroup's name when it is not the task id (a spare taken by a task). */
  cgroupId?: string;
}

/** A built template: a booted VM's disk, memory and machine state (without the memory). */
export interface QemuTemplate {
  key: string;
  dir: string;
  disk: string;
  memory: string;
  state: string;
  inputs: TemplateInputs;
  /** The image's raw disk under the template's. */
  base: string;
}

let qemuVersionCache: string | undefined;
function qemuVersion(): string {
  if (qemuVersionCache === undefined) {
    const r = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
    qemuVersionCache = (r.stdout ?? '').split('\n')[0]?.trim() || 'unknown';
  }
  return qemuVersionCache;
}

export class QemuDriver implements VmDriver {
  readonly name = 'qemu' as const;
  readonly acceleration: string;
  readonly guestEnv: Record<string, string> = { ...GUEST_ENV };
  readonly artifacts: BootArtifacts;
  private readonly root: string;
  /** Where QEMU's sockets go when it runs as a uid of its own (see above). */
  private readonly runRoot?: string;
  private readonly links: EgressLinks;

  constructor(private readonly o: QemuDriverOptions) {
    this.acceleration = o.accel === 'kvm' ? 'kvm' : `tcg (${TCG_WARNING})`;
    this.artifacts = bootArtifacts(o.image, o.profile ?? 'qemu');
    this.root = path.resolve(o.stateDir, 'hosts', o.hostId, 'vms');
    if (o.uids) {
      const key = createHash('sha256').update(this.root).digest('hex').slice(0, 8);
      this.runRoot = path.join('/run/lia', `${key}-${o.hostId}`);
    }
    this.links = new EgressLinks({
      sink: o.egress,
      connect: (id) => this.channel(id).connect('egress'),
      refuse: (id) => id.startsWith(SPARE_PREFIX), // no agent runs in a spare
      logger: o.logger,
    });
  }

  /** After a worker restart: the VMs kept running; their egress links lived in the old worker. */
  async adopt(): Promise<void> {
    for (const taskId of await this.list()) {
      const f = this.files(taskId);
      if (!this.running(taskId) || fs.existsSync(f.suspended)) continue;
      await this.links
        .attach(taskId)
        .catch((err: Error) =>
          this.o.logger.warn({ taskId, err: err.message }, 'qemu: cannot re-attach the egress port'),
        );
    }
  }

  private files(taskId: string) {
    const dir = path.join(this.root, taskId);
    const run = this.runRoot ? path.join(this.runRoot, taskId) : path.join(dir, 'run');
    return {
      dir,
      run,
      record: path.join(dir, 'vm.json'),
      vmm: path.join(dir, 'vmm.json'),
      disk: path.join(dir, this.artifacts.taskDisk === 'raw-copy' ? 'disk.raw' : 'disk.qcow2'),
      console: path.join(dir, 'console.log'),
      log: path.join(dir, 'qemu.log'),
      state: path.join(dir, 'state.bin'),
      migrate: path.join(run, 'migrate.sock'),
      suspended: path.join(dir, 'suspended'),
      sockets: {
        qmp: path.join(run, 'qmp.sock'),
        session: path.join(run, 'session.sock'),
        egress: path.join(run, 'egress.sock'),
      },
    };
  }

  private cgroupRel(taskId: string): string {
    let id = taskId;
    try {
      id = this.readRecord(taskId).cgroupId ?? taskId;
    } catch {}
    return `lia/${this.o.hostId}/${id}`;
  }

  private cgroup(taskId: string) {
    return this.o.cgroups ? { system: this.o.cgroups, rel: this.cgroupRel(taskId) } : undefined;
  }

  /** What a VM's cgroup allows: its vCPUs plus half a CPU for QEMU's own threads; its memory plus QEMU's. */
  static limits(spec: VmSpec, accel: 'kvm' | 'tcg'): CgroupLimits {
    // TCG keeps translated code too (TCG_TB_MIB) besides QEMU's own; KVM needs little beside the RAM.
    const overheadMib = accel === 'tcg' ? TCG_TB_MIB + 384 : 256;
    return {
      cpuPercent: spec.vcpus * 100 + 50,
      memoryBytes: (spec.memoryMib + overheadMib) * 2 ** 20,
      pids: 256,
    };
  }

  private readyTimeout(): number {
    return this.o.readyTimeoutMs ?? (this.o.accel === 'kvm' ? 30_000 : 300_000);
  }

  private vmm(taskId: string): VmmRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.files(taskId).vmm, 'utf8')) as VmmRecord;
    } catch {
      return undefined;
    }
  }

  private running(taskId: string): boolean {
    return isRunning(this.vmm(taskId));
  }

  private readRecord(taskId: string): VmRecord {
    return JSON.parse(fs.readFileSync(this.files(taskId).record, 'utf8')) as VmRecord;
  }

  private channel(taskId: string): SerialChannel {
    const s = this.files(taskId).sockets;
    return new SerialChannel({ session: s.session, egress: s.egress });
  }

  private async launch(
    taskId: string,
    rec: VmRecord,
    o: {
      incoming?: string;
      /** The disk, when not the task's (a template being built). */
      disk?: string;
      memory?: MemoryMode;
      /** The RAM's file, already open (closed here). */
      memoryFd?: number;
      /** The template's disk under the task's. */
      templateDisk?: string;
    } = {},
  ): Promise<{ incomingFd?: number }> {
    const incoming = o.incoming;
    const f = this.files(taskId);
    const owner = rec.uid !== undefined ? { uid: rec.uid, gid: rec.uid } : undefined;
    // A fresh run/ each time: QEMU makes its sockets there, as the VM's uid.
    fs.rmSync(f.run, { recursive: true, force: true });
    if (this.runRoot) fs.mkdirSync(this.runRoot, { recursive: true, mode: 0o711 });
    fs.mkdirSync(f.run, { mode: 0o700 });
    if (owner) fs.chownSync(f.run, owner.uid, owner.gid);
    const cg = this.cgroup(taskId);
    if (cg) cg.system.create(cg.rel, QemuDriver.limits(rec.spec, this.o.accel));
    const a = this.artifacts;
    const open = (file: string, flags: string) => fs.openSync(file, flags, 0o600);
    const fds: number[] = [];
    const add = (fd: number) => fds.push(fd) + 2;
    let kernel: number, initrd: number, disk: number;
    let base: number | undefined, template: number | undefined, memory: number | undefined;
    let incomingFd: number | undefined;
    try {
      kernel = add(open(a.kernel.path, 'r'));
      initrd = add(open(a.initrd, 'r'));
      disk = add(open(o.disk ?? f.disk, 'r+'));
      if (a.taskDisk === 'qcow2-overlay') base = add(open(rec.base ?? a.rootfs.path, 'r'));
      if (o.templateDisk) template = add(open(o.templateDisk, 'r'));
      if (o.memoryFd !== undefined) memory = add(o.memoryFd);
      if (incoming) incomingFd = add(open(incoming, 'r'));
    } catch (err) {
      for (const d of fds) fs.closeSync(d);
      if (o.memoryFd !== undefined && !fds.includes(o.memoryFd)) fs.closeSync(o.memoryFd);
      throw err;
    }
    const out = open(f.console, 'a');
    const err = open(f.log, 'w');
    let launched: ReturnType<typeof launch>;
    try {
      launched = launch({
        argv: [
          'qemu-system-x86_64',
          ...qemuArgs({
            name: `lia-${taskId}`,
            accel: this.o.accel,
            artifacts: a,
            memoryMib: rec.spec.memoryMib,
            vcpus: rec.spec.vcpus,
            sockets: f.sockets,
            fds: { kernel, initrd, disk, base, template, memory, incoming: incomingFd },
            tscKhz: hostTscKhz(),
            memory: o.memory,
          }),
        ],
        cwd: f.dir,
        cgroup: cg,
        runAs: owner,
        stdout: out,
        stderr: err,
        fds,
      });
    } finally {
      for (const d of [...fds, out, err]) fs.closeSync(d);
    }
    fs.writeFileSync(f.vmm, JSON.stringify(launched.record), { mode: 0o600 });
    // QEMU is up once its control socket answers; if it exits first, its message says why.
    const deadline = Date.now() + 30_000;
    let exitCode: number | null | undefined;
    void launched.exited.then((c) => {
      exitCode = c;
    });
    for (;;) {
      if (exitCode !== undefined || !isRunning(launched.record))
        throw new VmError(
          `QEMU did not start (exit ${exitCode ?? '?'}): ${this.tail(f.log, 800) || 'no message'}`,
          false,
        );
      if (fs.existsSync(f.sockets.qmp)) {
        try {
          (await Qmp.connect(f.sockets.qmp, 2000)).close();
          return { incomingFd };
        } catch {}
      }
      if (Date.now() > deadline) throw new VmError('QEMU did not open its control socket within 30 s');
      await sleep(20);
    }
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
        if (!this.running(taskId)) throw new VmError(`QEMU exited while ${what}${this.consoleTail(taskId)}`);
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
          await sleep(50);
        }
      }
    } finally {
      clearInterval(ticker);
    }
  }

  private tail(file: string, chars: number): string {
    try {
      return fs.readFileSync(file, 'utf8').trim().slice(-chars);
    } catch {
      return '';
    }
  }

  private consoleTail(taskId: string): string {
    const text = this.tail(this.files(taskId).console, 4000);
    return text ? `; guest console:\n${text.split('\n').slice(-15).join('\n')}` : '';
  }

  /** Joins the egress port without waiting for it (the sidecar holds the agent's connections meanwhile). */
  private attachLater(taskId: string): void {
    void this.links
      .attach(taskId)
      .catch((err: Error) =>
        this.o.logger.warn({ taskId, err: err.message }, "qemu: the guest's egress port did not answer"),
      );
  }

  /** The template for VMs of this size: its key and inputs (built or not). */
  templateFor(spec: Pick<VmSpec, 'vcpus' | 'memoryMib' | 'storageGb'>): {
    key: string;
    inputs: TemplateInputs;
  } {
    const a = this.artifacts;
    return templateFor(
      { driver: 'qemu', image: a.hash, profile: a.profile, vmm: qemuVersion(), accel: this.o.accel },
      spec,
    );
  }

  private templateFiles(dir: string) {
    return {
      disk: path.join(dir, 'disk.qcow2'),
      memory: path.join(dir, 'memory.bin'),
      state: path.join(dir, 'state.bin'),
    };
  }

  private readonly templateBuilds = new TemplateBuilds<QemuTemplate>();

  /**
   * The template for VMs of this size, built where missing (one build at a time per machine, with
   * progress): a VM booted to its sidecar's hello, paused, its machine state written without its
   * memory, its memory and disk kept as files. Only the qemu profile has templates (the
   * Firecracker artifacts' raw disks have no backing file).
   */
  async ensureTemplate(
    spec: Pick<VmSpec, 'vcpus' | 'memoryMib' | 'storageGb'>,
    progress: Progress,
  ): Promise<QemuTemplate> {
    if (this.artifacts.taskDisk !== 'qcow2-overlay')
      throw new VmError('templates need a qcow2 task disk (the qemu profile)', false);
    const { key, inputs } = this.templateFor(spec);
    const root = this.o.templateDir ?? defaultTemplateRoot();
    const template = (dir: string, base = this.artifacts.rootfs.path) => ({
      key,
      dir,
      inputs,
      base,
      ...this.templateFiles(dir),
    });
    return this.templateBuilds.ensure(root, key, progress, {
      found: (t) => template(t.dir, t.meta.base),
      build: async () => {
        const { dir, bootMs } = await buildTemplate({
          root,
          key,
          inputs,
          progress,
          logger: this.o.logger,
          about: `image ${inputs.image.slice(0, 12)}`,
          meta: { base: this.artifacts.rootfs.path },
          destroy: (id) => this.destroy(id),
          boot: (vm, work, say) => this.bootTemplateVm(vm, work, say),
          snapshot: (id, work, say) => this.snapshotTemplateVm(id, work, say),
          failure: (id) => this.consoleTail(id),
        });
        this.o.logger.info({ key, inputs, bootMs, dir }, 'qemu: template built');
        return template(dir);
      },
    });
  }

  /** The template VM runs on the template's own disk, its RAM the template's memory file. */
  private async bootTemplateVm(spec: VmSpec, work: string, say: Progress): Promise<void> {
    const id = spec.taskId;
    const t = this.templateFiles(work);
    const f = this.files(id);
    fs.mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    const uid = this.o.uids?.claim(id);
    const owner = uid !== undefined ? { uid, gid: uid } : undefined;
    const rec: VmRecord = { spec, profile: this.artifacts.profile, uid, base: this.artifacts.rootfs.path };
    fs.writeFileSync(f.record, JSON.stringify(rec), { mode: 0o600 });
    await createTaskDisk('qcow2-overlay', this.artifacts.rootfs.path, t.disk, spec.storageGb, owner);
    // The guest's RAM is this file while the template runs (a shared mapping).
    fs.writeFileSync(t.memory, '', { mode: 0o600 });
    fs.truncateSync(t.memory, spec.memoryMib * 2 ** 20);
    if (owner) fs.chownSync(t.memory, owner.uid, owner.gid);
    fs.writeFileSync(f.console, '', { mode: 0o600 });
    say('booting the template VM');
    await this.launch(id, rec, { disk: t.disk, memory: 'template', memoryFd: fs.openSync(t.memory, 'r+') });
    await this.waitForSidecar(id, say, 'booting the template');
  }

  /** The machine state without the memory (the template's memory file keeps it). */
  private async snapshotTemplateVm(id: string, work: string, say: Progress): Promise<void> {
    const t = this.templateFiles(work);
    const { uid } = this.readRecord(id);
    await this.writeState(id, t.state, say, true);
    await this.stopVmm(id);
    // Read-only from now on: the disk is every task disk's backing file (read by each VM's uid
    // through the descriptor the worker passes), the memory is read into a sealed memfd.
    if (uid !== undefined) for (const file of [t.disk, t.memory, t.state]) fs.chownSync(file, 0, 0);
    fs.chmodSync(t.disk, 0o644);
  }

  /** A sealed in-memory copy of each template's memory, made once per worker (see sealed-memory.ts). */
  private readonly sealed = new Map<string, Promise<number>>();

  private async templateMemory(t: QemuTemplate): Promise<number> {
    let p = this.sealed.get(t.key);
    if (!p) {
      p = sealedMemory(t.memory);
      this.sealed.set(t.key, p);
      p.catch(() => this.sealed.delete(t.key));
    }
    // A descriptor of its own for this launch (the launcher closes what it passes).
    return fs.openSync(`/proc/self/fd/${await p}`, 'r');
  }

  async boot(spec: VmSpec, progress: Progress, signal?: AbortSignal): Promise<BootInfo> {
    const f = this.files(spec.taskId);
    const step = () => {
      if (signal?.aborted) throw new VmError('booting: cancelled');
    };
    if (this.running(spec.taskId) && !fs.existsSync(f.suspended)) {
      await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
      if (!this.links.connected(spec.taskId)) await this.links.attach(spec.taskId);
      const rec = this.readRecord(spec.taskId);
      return rec.template ? { from: 'template', template: rec.template.key } : { from: 'cold' };
    }
    step();
    // A half-made VM of an earlier attempt (its QEMU died, or never answered) is started over.
    await this.stopVmm(spec.taskId);
    if (this.o.templates !== false) {
      const spare = this.takeSpare(spec);
      if (spare)
        try {
          return await this.adoptSpare(spare, spec);
        } catch (err) {
          this.o.logger.warn(
            { taskId: spec.taskId, spare, err: (err as Error).message },
            'qemu: a spare VM could not be taken; starting one',
          );
          await this.destroy(spare).catch(() => {});
          await this.stopVmm(spec.taskId);
        }
    }
    fs.mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    if ([...Object.values(f.sockets), f.migrate].some((s) => s.length > MAX_SOCKET_PATH))
      throw new VmError(
        `socket path too long (${f.sockets.session.length} > ${MAX_SOCKET_PATH}): use a shorter LIA__STATE__DIR`,
        false,
      );
    const uid = this.o.uids?.claim(spec.taskId);
    return templateOrCold({
      templates: this.o.templates !== false && this.artifacts.taskDisk === 'qcow2-overlay',
      driver: 'qemu',
      taskId: spec.taskId,
      progress,
      signal,
      logger: this.o.logger,
      fromTemplate: () => this.bootFromTemplate(spec, uid, progress, signal),
      undo: async () => {
        await this.stopVmm(spec.taskId);
        fs.rmSync(f.disk, { force: true });
      },
      cold: () => this.coldBoot(spec, uid, progress, signal),
    });
  }

  /** Boots the VM from the image, to its sidecar's hello, with its egress attached. */
  private async coldBoot(
    spec: VmSpec,
    uid: number | undefined,
    progress: Progress,
    signal?: AbortSignal,
  ): Promise<void> {
    const f = this.files(spec.taskId);
    const step = () => {
      if (signal?.aborted) throw new VmError('booting: cancelled');
    };
    step();
    const rec: VmRecord = { spec, profile: this.artifacts.profile, uid, base: this.artifacts.rootfs.path };
    fs.writeFileSync(f.record, JSON.stringify(rec), { mode: 0o600 });
    progress(`booting: ${spec.storageGb} GB disk (${this.artifacts.taskDisk})`);
    await createTaskDisk(
      this.artifacts.taskDisk,
      this.artifacts.rootfs.path,
      f.disk,
      spec.storageGb,
      uid !== undefined ? { uid, gid: uid } : undefined,
    ).catch((err: Error) => {
      throw new VmError(`creating the task's disk: ${err.message}`, false);
    });
    step();
    progress(`booting: QEMU (${this.acceleration}), ${spec.vcpus} vCPU, ${spec.memoryMib} MiB`);
    fs.writeFileSync(f.console, '', { mode: 0o600 });
    await this.launch(spec.taskId, rec);
    await this.waitForSidecar(spec.taskId, progress, 'booting', signal);
    step();
    progress('booting: attaching the egress port');
    await this.links.attach(spec.taskId).catch((err: Error) => {
      throw new VmError(`the guest's egress port: ${err.message}${this.consoleTail(spec.taskId)}`);
    });
    this.o.logger.info(
      { taskId: spec.taskId, accel: this.acceleration, uid, profile: this.artifacts.profile },
      'qemu: booted',
    );
  }

  /**
   * A new VM restored from the template: its own disk over the template's, its own QEMU with
   * the template's memory mapped private, the template's machine state. Throws (leaving what
   * it made for the cold boot to replace) when any of it fails.
   */
  private async bootFromTemplate(
    spec: VmSpec,
    uid: number | undefined,
    progress: Progress,
    signal?: AbortSignal,
    egress = true,
  ): Promise<string> {
    const f = this.files(spec.taskId);
    const t = await this.ensureTemplate(spec, progress);
    if (signal?.aborted) throw new VmError('booting: cancelled');
    const rec: VmRecord = {
      spec,
      profile: this.artifacts.profile,
      uid,
      template: { key: t.key, dir: t.dir },
      base: t.base,
    };
    fs.writeFileSync(f.record, JSON.stringify(rec), { mode: 0o600 });
    progress(`booting: from template ${t.key.slice(0, 8)}: ${spec.storageGb} GB disk over the template's`);
    await createTaskDisk(
      'qcow2-overlay',
      t.disk,
      f.disk,
      spec.storageGb,
      uid !== undefined ? { uid, gid: uid } : undefined,
      'qcow2',
    );
    fs.writeFileSync(f.console, '', { mode: 0o600 });
    progress(`booting: restoring template ${t.key.slice(0, 8)} (${this.acceleration})`);
    const { incomingFd } = await this.launch(spec.taskId, rec, {
      incoming: t.state,
      memory: 'clone',
      memoryFd: await this.templateMemory(t),
      templateDisk: t.disk,
    });
    await this.continueIncoming(spec.taskId, () => this.tail(f.log, 400), incomingFd);
    await this.waitForSidecar(spec.taskId, progress, 'restoring the template', signal);
    // The egress port is joined in the background: the guest's end (a relay that restarted over
    // and over in the template, with no host) often loses the first hello, and its answer to the
    // next costs the 3 s hello timeout. The sidecar holds the agent's connections until the link
    // is up (up to 30 s), so the spawn need not wait for it.
    if (egress) this.attachLater(spec.taskId);
    this.o.logger.info(
      { taskId: spec.taskId, accel: this.acceleration, uid, template: t.key },
      'qemu: started from the template',
    );
    return t.key;
  }

  // ---- the pool: VMs restored from the template ahead of demand --------------------------------

  private readonly spares: string[] = [];
  private filling = false;
  private poolStopped = false;

  /** How many spare VMs this driver keeps (the host counts them against its capacity). */
  get poolSize(): number {
    return this.o.templates === false ? 0 : (this.o.pool?.size ?? 0);
  }

  /** Spares ready to be taken. */
  get sparesReady(): number {
    return this.spares.length;
  }

  /** Removes the spares an earlier worker left, and fills the pool (in the background). */
  async startPool(): Promise<void> {
    if (!this.poolSize) return;
    this.poolStopped = false;
    for (const id of await this.list())
      if (id.startsWith(SPARE_PREFIX) && !this.spares.includes(id)) await this.destroy(id).catch(() => {});
    void this.refill();
  }

  /** Stops filling, and destroys the spares no task took. */
  async stopPool(): Promise<void> {
    this.poolStopped = true;
    for (const id of this.spares.splice(0)) await this.destroy(id).catch(() => {});
  }

  private async refill(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    try {
      while (!this.poolStopped && this.spares.length < this.poolSize) {
        const id = `${SPARE_PREFIX}${randomBytes(4).toString('hex')}`;
        const spec: VmSpec = { taskId: id, ...this.o.pool!.spec };
        try {
          fs.mkdirSync(this.files(id).dir, { recursive: true, mode: 0o700 });
          // With its egress port joined (streams refused until a task takes it): with no host on
          // that port, the guest's relay would start over every 0.2 s, and burn the CPU.
          await this.bootFromTemplate(spec, this.o.uids?.claim(id), () => {});
          if (this.poolStopped) await this.destroy(id);
          else this.spares.push(id);
        } catch (err) {
          this.o.logger.warn(
            { err: (err as Error).message },
            'qemu: could not restore a spare VM; trying again in 30 s',
          );
          await this.destroy(id).catch(() => {});
          await sleep(30_000);
        }
      }
    } finally {
      this.filling = false;
    }
  }

  /** A running spare of this size, out of the pool. */
  private takeSpare(spec: VmSpec): string | undefined {
    const i = this.spares.findIndex((id) => {
      try {
        const r = this.readRecord(id).spec;
        return (
          r.vcpus === spec.vcpus &&
          r.memoryMib === spec.memoryMib &&
          r.storageGb === spec.storageGb &&
          this.running(id)
        );
      } catch {
        return false;
      }
    });
    return i < 0 ? undefined : this.spares.splice(i, 1)[0];
  }

  /**
   * The spare becomes the task's VM: its folders are renamed to the task's (QEMU's sockets stay
   * bound, now under the new name), its uid claimed for the task, its cgroup kept under its
   * own name (recorded); its identity is the task's start message's, like any VM's.
   */
  private async adoptSpare(spare: string, spec: VmSpec): Promise<BootInfo> {
    const from = this.files(spare);
    const to = this.files(spec.taskId);
    fs.rmSync(to.run, { recursive: true, force: true });
    fs.rmSync(to.dir, { recursive: true, force: true });
    if (this.runRoot) fs.renameSync(from.run, to.run);
    fs.renameSync(from.dir, to.dir);
    const rec = this.readRecord(spec.taskId);
    rec.cgroupId = rec.cgroupId ?? spare;
    rec.spec = { ...rec.spec, taskId: spec.taskId };
    fs.writeFileSync(to.record, JSON.stringify(rec), { mode: 0o600 });
    this.o.uids?.rename(spare, spec.taskId);
    if (!this.links.handOver(spare, spec.taskId)) this.attachLater(spec.taskId);
    void this.refill();
    this.o.logger.info({ taskId: spec.taskId, spare }, 'qemu: took a spare VM');
    return { from: 'template', template: rec.template?.key, pooled: true };
  }

  async connect(taskId: string): Promise<Duplex> {
    try {
      return await this.channel(taskId).connect('session');
    } catch (e) {
      throw new VmError(`task ${taskId}: cannot reach the VM's session port: ${(e as Error).message}`);
    }
  }

  async suspend(taskId: string, progress: Progress): Promise<{ snapshotBytes: number }> {
    const f = this.files(taskId);
    if (fs.existsSync(f.suspended) && !this.running(taskId))
      return { snapshotBytes: fs.statSync(f.state).size };
    if (!this.running(taskId))
      throw new VmError(`task ${taskId}: QEMU is not running, nothing to suspend`, false);
    this.links.detach(taskId);
    await this.writeState(taskId, f.state, progress);
    fs.writeFileSync(f.suspended, '');
    await this.stopVmm(taskId);
    return { snapshotBytes: fs.statSync(f.state).size };
  }

  /** Pauses the VM and writes its machine state to `dest`; QEMU is told to quit. */
  private async writeState(
    taskId: string,
    dest: string,
    progress: Progress,
    ignoreShared = false,
  ): Promise<void> {
    const f = this.files(taskId);
    const rec = this.readRecord(taskId);
    const qmp = await Qmp.connect(f.sockets.qmp);
    // QEMU may not spawn (`cat > file`): it connects to this socket, the worker writes the file.
    fs.rmSync(f.migrate, { force: true });
    const tmp = `${dest}.tmp`;
    const server = net.createServer();
    const written = new Promise<void>((resolve, reject) => {
      server.once('connection', (sock) => {
        server.close();
        const out = fs.createWriteStream(tmp, { mode: 0o600 });
        sock.pipe(out);
        out.on('finish', resolve);
        out.on('error', reject);
        sock.on('error', reject);
      });
    });
    written.catch(() => {});
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(f.migrate, () => resolve());
      });
      fs.chmodSync(f.migrate, 0o600);
      if (rec.uid !== undefined) fs.chownSync(f.migrate, rec.uid, rec.uid);
      progress('suspending: pausing the VM');
      await qmp.execute('stop');
      // No bandwidth cap: the VM is paused, the only goal is to be done.
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 2 ** 30 });
      // A template's RAM is its memory file, kept as it is: the state leaves it out. A VM started
      // from a template still has the capability its incoming state needed: a task's own
      // snapshot holds all of its memory.
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: ignoreShared }],
      });
      progress('suspending: writing the machine state');
      await qmp.execute('migrate', { uri: `unix:${f.migrate}` });
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
      await written;
      fs.renameSync(tmp, dest);
      await qmp.execute('quit').catch(() => {});
    } finally {
      qmp.close();
      server.close();
      fs.rmSync(f.migrate, { force: true });
      fs.rmSync(tmp, { force: true });
    }
  }

  /** Kills the VM's QEMU (and anything else in its cgroup), and waits until it is gone. */
  private async stopVmm(taskId: string): Promise<void> {
    await kill(this.vmm(taskId), this.cgroup(taskId)).catch((err: Error) => {
      throw new VmError(`task ${taskId}: ${err.message}`);
    });
  }

  /** Waits for an incoming QEMU to have loaded its state, and lets it run. */
  private async continueIncoming(taskId: string, why: () => string, deferredFd?: number): Promise<void> {
    const f = this.files(taskId);
    try {
      const qmp = await Qmp.connect(f.sockets.qmp);
      try {
        if (deferredFd !== undefined) {
          // A clone: the template's state was written without its (shared) memory.
          await qmp.execute('migrate-set-capabilities', {
            capabilities: [{ capability: 'x-ignore-shared', state: true }],
          });
          await qmp.execute('migrate-incoming', { uri: `fd:${deferredFd}` });
        }
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
      if (this.running(taskId)) throw err;
      throw new VmError(`QEMU exited while loading the machine state: ${why()}`);
    }
  }

  async restore(taskId: string, progress: Progress, signal?: AbortSignal): Promise<void> {
    const f = this.files(taskId);
    // `suspended` goes only once the restored guest answers: until then a retry starts over.
    if (!fs.existsSync(f.suspended)) {
      if (this.running(taskId)) {
        await this.waitForSidecar(taskId, progress, 'restoring', signal);
        if (!this.links.connected(taskId)) await this.links.attach(taskId);
        return;
      }
      throw new VmError(`task ${taskId}: the VM is neither suspended nor running on this host`, false);
    }
    if (!fs.existsSync(f.state)) throw new VmError(`task ${taskId}: no saved VM state to restore`, false);
    // A QEMU left by an earlier attempt (a worker that died mid-restore, a cancelled one) is
    // stopped first: the state file is still whole, and two VMs must never run one disk.
    if (this.running(taskId)) progress('restoring: stopping the QEMU of an earlier attempt');
    await this.stopVmm(taskId);
    if (signal?.aborted) throw new VmError('restoring: cancelled');
    const rec = this.readRecord(taskId);
    progress('restoring: loading the machine state');
    const damaged = (why: string) =>
      new VmError(
        `task ${taskId}: QEMU exited while loading the saved machine state (the snapshot may be damaged; it is kept): ${why}`,
      );
    // A VM started from a template keeps the template's disk under its own, and its RAM block's
    // name (`mem`); its own snapshot holds all of its memory, so the template's is not needed.
    const fromTemplate = rec.template
      ? { memory: 'ram' as const, templateDisk: this.templateFiles(rec.template.dir).disk }
      : {};
    // QEMU reads the state before it opens its control socket: a state it refuses ends it there.
    await this.launch(taskId, rec, { incoming: f.state, ...fromTemplate }).catch((err: Error) => {
      throw damaged(err.message.replace(/^QEMU did not start \(exit [^)]*\): /, ''));
    });
    await this.continueIncoming(taskId, () => this.tail(f.log, 400)).catch((err: Error) => {
      throw this.running(taskId) ? err : damaged(this.tail(f.log, 400));
    });
    await this.waitForSidecar(taskId, progress, 'restoring', signal);
    await this.links.attach(taskId).catch((err: Error) => {
      throw new VmError(`the guest's egress port: ${err.message}`);
    });
    fs.rmSync(f.suspended, { force: true });
    fs.rmSync(f.state, { force: true });
  }

  async destroy(taskId: string): Promise<void> {
    const f = this.files(taskId);
    this.links.detach(taskId);
    await this.stopVmm(taskId);
    const cg = this.cgroup(taskId);
    if (cg?.system.exists(cg.rel)) cg.system.remove(cg.rel);
    await this.o.egress?.close?.(taskId);
    this.o.uids?.release(taskId);
    fs.rmSync(f.run, { recursive: true, force: true });
    fs.rmSync(f.dir, { recursive: true, force: true });
    // The host's sockets folder goes with its last VM.
    if (this.runRoot)
      try {
        fs.rmdirSync(this.runRoot);
      } catch {}
  }

  async strays(): Promise<number[]> {
    const pids = new Set<number>();
    // A QEMU whose working folder (its task's: it follows a rename) is there is no stray.
    const live = new Set<number>();
    if (fs.existsSync(this.root))
      for (const p of processesUnder(this.root)) (p.gone ? pids : live).add(p.pid);
    // QEMU names its sockets' folder, not the task's: it is a stray when the task's is gone.
    // (A spare taken by a task still names the spare's folder on its command line.)
    if (this.runRoot && fs.existsSync(this.runRoot))
      for (const p of processesUnder(this.runRoot))
        if (!live.has(p.pid) && !fs.existsSync(path.join(this.root, p.entry))) pids.add(p.pid);
    // A cgroup no VM folder names (its task's, or the spare's a task took) holds nothing Lia
    // still knows about.
    const cg = this.o.cgroups;
    if (cg) {
      const known = new Set<string>();
      for (const id of await this.list()) {
        known.add(id);
        try {
          const c = this.readRecord(id).cgroupId;
          if (c) known.add(c);
        } catch {}
      }
      for (const id of cg.children(`lia/${this.o.hostId}`))
        if (!known.has(id)) for (const pid of cg.pids(`lia/${this.o.hostId}/${id}`)) pids.add(pid);
    }
    return [...pids];
  }

  async list(): Promise<string[]> {
    return fs.existsSync(this.root) ? fs.readdirSync(this.root) : [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
