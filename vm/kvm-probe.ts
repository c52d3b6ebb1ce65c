/**
 * Does KVM really run a vCPU here? `/dev/kvm` existing is not enough (on some hosts, nested
 * setups among them, the first KVM_RUN never returns). The probe boots a 512-byte boot sector
 * under QEMU with KVM that writes a marker to the debug port; no marker within a few seconds
 * means no usable KVM, and the reason says which step failed.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface KvmProbe {
  usable: boolean;
  reason: string;
  ms: number;
}

const MARKER = 'LIA-KVM-OK';

/** Real-mode code: write MARKER to port 0xe9 byte by byte, then halt forever. */
function bootSector(): Buffer {
  const code: number[] = [];
  for (const ch of Buffer.from(MARKER)) code.push(0xb0, ch, 0xe6, 0xe9); // mov al, ch; out 0xe9, al
  code.push(0xf4, 0xeb, 0xfd); // hlt; jmp $-1
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

let cached: Promise<KvmProbe> | undefined;

export function probeKvm(timeoutMs = 1500): Promise<KvmProbe> {
  cached ??= runProbe(timeoutMs);
  return cached;
}

async function runProbe(timeoutMs: number): Promise<KvmProbe> {
  const started = Date.now();
  const done = (usable: boolean, reason: string): KvmProbe => ({ usable, reason, ms: Date.now() - started });
  if (!fs.existsSync('/dev/kvm')) return done(false, '/dev/kvm does not exist');
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
  } catch (err) {
    return done(false, `/dev/kvm cannot be opened: ${(err as Error).message}`);
  }
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' }).status !== 0) {
    return done(false, 'qemu-system-x86_64 is not installed, so the vCPU probe cannot run');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-kvm-probe-'));
  try {
    const disk = path.join(dir, 'boot.img');
    const out = path.join(dir, 'debugcon.out');
    fs.writeFileSync(disk, bootSector());
    const qemu = spawn(
      'qemu-system-x86_64',
      [
        '-accel',
        'kvm',
        '-nodefaults',
        '-display',
        'none',
        '-m',
        '16',
        '-no-reboot',
        '-drive',
        `file=${disk},format=raw,if=ide`,
        '-chardev',
        `file,id=dbg,path=${out}`,
        '-device',
        'isa-debugcon,iobase=0xe9,chardev=dbg',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    qemu.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((r) => qemu.once('exit', () => r()));
    const deadline = Date.now() + timeoutMs;
    try {
      while (Date.now() < deadline) {
        if (fs.existsSync(out) && fs.readFileSync(out, 'latin1').includes(MARKER)) {
          return done(true, `a KVM vCPU ran guest code in ${Date.now() - started} ms`);
        }
        if (qemu.exitCode !== null)
          return done(false, `QEMU with KVM exited at once: ${stderr.trim().split('\n').pop()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return done(
        false,
        `/dev/kvm exists but a vCPU ran no guest code within ${timeoutMs} ms (KVM_RUN hangs, or is emulated far slower than TCG)`,
      );
    } finally {
      qemu.kill('SIGKILL');
      await exited;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
