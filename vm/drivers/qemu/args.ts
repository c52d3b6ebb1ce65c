/**
 * QEMU's command line for one VM. What it leaves out matters as much as what it has:
 * - no network device at all: the guest's only way out is its egress port (vm/channel/);
 * - no file paths QEMU must open itself: kernel, initramfs and disks are file descriptors the
 *   worker opened and passed (/proc/self/fd/N), so QEMU, running as the VM's own uid, needs no
 *   access to the image cache or the task folder; the console goes to its stdout;
 * - `-sandbox on` with obsolete, elevateprivileges, spawn and resourcecontrol denied (seccomp):
 *   no fork or exec, no setuid, no setrlimit/scheduler changes. (So no `migrate exec:`: the
 *   machine state goes over a Unix socket, and comes back as a passed descriptor.)
 */
import fs from 'node:fs';
import type { BootArtifacts } from '../../image/artifacts.js';

/** TCG's translation cache, MiB (QEMU's default is 1 GiB). */
export const TCG_TB_MIB = 256;

export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

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

/** Descriptor numbers in QEMU's process (3 and up, in the order the launcher passes them). */
export interface QemuFds {
  kernel: number;
  initrd: number;
  disk: number;
  /** The raw image under a qcow2 overlay. */
  base?: number;
  /** The machine state to restore. */
  incoming?: number;
  /** A template's disk (qcow2 over the raw image) between the task's overlay and the image. */
  template?: number;
  /** The guest's RAM as a file (a template's memory): see `QemuArgsInput.memory`. */
  memory?: number;
}

/**
 * Where the guest's RAM lives:
 *   undefined   QEMU's default (anonymous memory, RAM block `microvm.ram`): a cold-booted VM
 *   ram         anonymous memory in a backend named `mem` (a VM started from a template,
 *               restored from its own snapshot: the RAM block keeps the template's name)
 *   template    the template being built: its RAM is the file `fds.memory` (shared mapping),
 *               so the paused VM's memory is that file, and the snapshot leaves it out
 *   clone       a VM started from a template: the template's memory file mapped private
 *               (copy-on-write: VMs of one template share the pages none of them wrote)
 * The template's snapshot is written with the migration capability `x-ignore-shared` (its
 * shared RAM left out), and a clone must read it with the same capability set: a capability is
 * set over QMP, so a clone starts with `-incoming defer` and is given the state then
 * (QEMU 7.2 has no command-line property for it).
 */
export type MemoryMode = 'ram' | 'template' | 'clone';

export interface QemuArgsInput {
  name: string;
  accel: 'kvm' | 'tcg';
  artifacts: BootArtifacts;
  memoryMib: number;
  vcpus: number;
  sockets: { qmp: string; session: string; egress: string };
  fds: QemuFds;
  tscKhz?: number;
  memory?: MemoryMode;
}

const fd = (n: number) => `/proc/self/fd/${n}`;

export function qemuArgs(i: QemuArgsInput): string[] {
  const a = i.artifacts;
  // microvm describes its virtio-mmio devices in ACPI tables, as Firecracker does since 1.8
  // (Debian's kernel takes none from the command line: no VIRTIO_MMIO_CMDLINE_DEVICES). The
  // Firecracker profile differs only in its artifacts: the ELF kernel (entered through PVH),
  // a raw disk.
  const machine = 'microvm,x-option-roms=off,rtc=on';
  const raw = (prefix: string) =>
    `${prefix}driver=raw,${prefix}file.driver=file,${prefix}file.filename=${fd(i.fds.base!)},${prefix}read-only=on`;
  const disk =
    a.taskDisk === 'qcow2-overlay'
      ? `driver=qcow2,node-name=root,file.driver=file,file.filename=${fd(i.fds.disk)},` +
        (i.fds.template !== undefined
          ? // task overlay → the template's disk (what its guest had written when snapshotted) → image
            `backing.driver=qcow2,backing.file.driver=file,backing.file.filename=${fd(i.fds.template)},` +
            `backing.read-only=on,${raw('backing.backing.')}`
          : raw('backing.'))
      : `driver=raw,node-name=root,file.driver=file,file.filename=${fd(i.fds.disk)}`;
  const mem = i.memory;
  const memory =
    mem === undefined
      ? []
      : [
          '-object',
          mem === 'ram'
            ? `memory-backend-ram,id=mem,size=${i.memoryMib}M`
            : `memory-backend-file,id=mem,size=${i.memoryMib}M,mem-path=${fd(i.fds.memory!)},` +
              `share=${mem === 'template' ? 'on' : 'off'},discard-data=off`,
        ];
  return [
    '-name',
    i.name,
    '-M',
    mem === undefined ? machine : `${machine},memory-backend=mem`,
    // TCG's translated code may take 1 GiB by default: bounded, so the VM fits its cgroup.
    ...(i.accel === 'kvm'
      ? ['-accel', 'kvm', '-cpu', 'host']
      : ['-accel', `tcg,tb-size=${TCG_TB_MIB}`, '-cpu', 'max']),
    '-m',
    String(i.memoryMib),
    '-smp',
    String(i.vcpus),
    ...memory,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    fd(i.fds.kernel),
    '-initrd',
    fd(i.fds.initrd),
    '-append',
    kernelCommandLine(i.accel, i.tscKhz),
    '-serial',
    'stdio',
    '-blockdev',
    disk,
    '-device',
    'virtio-blk-device,drive=root',
    '-device',
    // Port 0 is the console's (unused); 1 and 2 are ours.
    'virtio-serial-device,max_ports=3',
    '-chardev',
    `socket,id=session,path=${i.sockets.session},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=session,name=lia.sidecar',
    '-chardev',
    `socket,id=egress,path=${i.sockets.egress},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=egress,name=lia.egress',
    '-qmp',
    `unix:${i.sockets.qmp},server=on,wait=off`,
    '-sandbox',
    QEMU_SANDBOX,
    ...(mem === 'clone'
      ? ['-incoming', 'defer']
      : i.fds.incoming !== undefined
        ? ['-incoming', `fd:${i.fds.incoming}`]
        : []),
  ];
}
