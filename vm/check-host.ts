/**
 * What this host offers Lia's VMs, for an operator: KVM (does a vCPU really run), QEMU and
 * Firecracker (installed, which versions), the guest image's artifacts, cgroups, vsock, root —
 * and then each driver's self-check, the same one a host worker runs at start (vm/self-check.ts),
 * and which driver `auto` would take. Exit 0 when a driver works, 1 when none does.
 *   vm/check-host.sh     (node --import tsx vm/check-host.ts)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigOrExit } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import type { VmDriver } from './driver.js';
import { ensureGuestImage } from './image/ensure.js';
import { WANTED_MODULES } from './image/initrd.js';
import { hasPvhEntry } from './image/vmlinux.js';
import { probeKvm } from './kvm-probe.js';
import { detectCgroups } from './process/cgroup.js';
import { firecrackerCandidate, qemuCandidate, which } from './select.js';
import { type SelfCheckReport, selfCheck } from './self-check.js';

export interface Line {
  ok: boolean | undefined;
  what: string;
  detail: string;
}

function version(bin: string | undefined): string | undefined {
  if (!bin) return undefined;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout || r.stderr || '').split('\n')[0]?.trim() || undefined;
}

export async function checkHost(
  say: (l: Line) => void = () => {},
): Promise<{ lines: Line[]; ok: boolean; chosen?: string }> {
  const config = loadConfigOrExit();
  const lines: Line[] = [];
  const add = (ok: boolean | undefined, what: string, detail: string) => {
    const l = { ok, what, detail };
    lines.push(l);
    say(l);
  };
  const root = process.getuid?.() === 0;
  add(
    root,
    'root',
    root
      ? 'yes: a uid and a cgroup per VM, the jailer'
      : 'no: VMMs run as this user, with no cgroup; no Firecracker',
  );

  const kvm = await probeKvm();
  add(kvm.usable, 'KVM', `${fs.existsSync('/dev/kvm') ? '/dev/kvm present; ' : ''}${kvm.reason}`);
  const qemu = which('qemu-system-x86_64');
  add(
    !!qemu,
    'QEMU',
    qemu ? `${version(qemu)} (${qemu})` : 'not installed (apt-get install qemu-system-x86)',
  );
  if (qemu && !kvm.usable)
    add(
      undefined,
      'QEMU acceleration',
      'TCG: software emulation, not a security boundary (LIA__VM__REQUIRE_KVM=true refuses it)',
    );
  const fc = config.vm.firecracker_bin ?? which('firecracker');
  const jailer = config.vm.jailer_bin ?? which('jailer');
  add(!!fc, 'firecracker', fc ? `${version(fc)} (${fc})` : 'not installed (vm/setup.sh installs it)');
  add(
    !!jailer,
    'jailer',
    jailer ? `${version(jailer)} (${jailer})` : 'not installed (vm/setup.sh installs it)',
  );
  add(
    !!which('setpriv'),
    'setpriv',
    which('setpriv') ? 'present (starts each QEMU as its VM’s uid)' : 'missing (util-linux)',
  );

  const cg = detectCgroups();
  add(
    cg.system ? true : root ? false : undefined,
    'cgroups',
    cg.system ? `${cg.reason}${cg.system.version === 1 ? ' (v2 preferred; v1 works)' : ''}` : cg.reason,
  );
  add(
    undefined,
    'vsock',
    `${fs.existsSync('/dev/vhost-vsock') ? '/dev/vhost-vsock present' : 'no /dev/vhost-vsock'}: Firecracker brings its own vsock (hybrid, over a Unix socket) and needs none; QEMU uses virtio-serial ports`,
  );

  let image: Awaited<ReturnType<typeof ensureGuestImage>> | undefined;
  try {
    image = await ensureGuestImage((m) => say({ ok: undefined, what: 'image', detail: m }));
    const mib = (f: string) => `${(fs.statSync(f).blocks / 2048).toFixed(0)} MiB`;
    const elf = fs.readFileSync(image.vmlinux);
    add(true, 'image: kernel', `${path.basename(image.kernel)} (bzImage, QEMU), ${mib(image.kernel)}`);
    add(
      hasPvhEntry(elf),
      'image: vmlinux',
      `uncompressed ELF${hasPvhEntry(elf) ? ' with a PVH entry' : ', NO PVH entry'} (Firecracker), ${mib(image.vmlinux)}`,
    );
    add(true, 'image: initrd', `${path.basename(image.initrd)}: ${WANTED_MODULES.join(', ')}, the sidecar`);
    const magic = Buffer.alloc(2);
    const fd = fs.openSync(image.rootfs, 'r');
    fs.readSync(fd, magic, 0, 2, 1024 + 0x38);
    fs.closeSync(fd);
    add(
      magic.readUInt16LE(0) === 0xef53,
      'image: rootfs',
      `raw ext4, ${mib(image.rootfs)} used (${image.rootfs})`,
    );
  } catch (err) {
    add(false, 'image', (err as Error).message);
  }

  const logger = createLogger('check-host', 'error');
  const reports: SelfCheckReport[] = [];
  let chosen: string | undefined;
  for (const c of [
    firecrackerCandidate(config, logger, undefined),
    qemuCandidate(config, logger, undefined),
  ]) {
    let driver: VmDriver;
    try {
      driver = await c.build();
    } catch (err) {
      add(undefined, `self-check: ${c.name}`, `not tried: ${(err as Error).message}`);
      continue;
    }
    const r = await selfCheck(driver, { memoryMib: 256 });
    reports.push(r);
    const ms = Object.entries(r.ms)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(', ');
    add(
      r.ok,
      `self-check: ${c.name}`,
      r.ok ? `passed (${driver.acceleration}): ${ms}` : `FAILED at ${r.failed?.step}: ${r.failed?.error}`,
    );
    if (r.ok && !chosen) chosen = `${driver.name} (${driver.acceleration})`;
  }
  add(
    !!chosen,
    'LIA__VM__DRIVER=auto',
    chosen
      ? `would run ${chosen}`
      : 'no driver passed its self-check: a host worker here refuses to start (never the local driver)',
  );
  return { lines, ok: !!chosen, chosen };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mark = (ok: boolean | undefined) => (ok === true ? '✔' : ok === false ? '✖' : '·');
  const { ok } = await checkHost((l) =>
    process.stdout.write(`${mark(l.ok)} ${l.what.padEnd(22)} ${l.detail}\n`),
  );
  process.exit(ok ? 0 : 1);
}
