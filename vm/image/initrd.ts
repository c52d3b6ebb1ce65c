/**
 * The guest's initramfs: a static busybox, the virtio modules of the base image's kernel (in
 * dependency order), and Lia's own guest files — the guest's init, the sidecar bundle and
 * node-pty — which its init copies onto a tmpfs in the guest. Built in about a second, cached
 * by a hash of those inputs, so a change to the sidecar never rebuilds the base image. One
 * initramfs for every driver: QEMU (virtio-serial) and Firecracker (vsock) alike.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SIDECAR_BUNDLE } from '../sidecar/build.js';
import { type BaseImage, cacheRoot, run, type Say } from './base.js';

/**
 * virtio over MMIO (microvm, Firecracker), the disk, the serial ports (QEMU's host channel) and
 * vsock (Firecracker's). No network driver: a guest has no network card.
 */
export const WANTED_MODULES = ['virtio_mmio', 'virtio_blk', 'virtio_console', 'vmw_vsock_virtio_transport'];

const here = import.meta.dirname;
const repoRoot = path.resolve(here, '..', '..');
const nodePty = path.join(repoRoot, 'node_modules', 'node-pty');

/** A module's dependencies, from the `depends=` entry of its .modinfo section. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + '\0depends='.length, end).toString('ascii');
  return list ? list.split(',') : [];
}

/** Module files (relative to `modulesDir`) of `wanted` and their dependencies, dependencies first. */
export function moduleOrder(modulesDir: string, wanted: string[]): string[] {
  const byName = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(modulesDir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.ko')) byName.set(e.name.slice(0, -3).replace(/-/g, '_'), r);
    }
  };
  walk('kernel');
  const order: string[] = [];
  const visit = (name: string) => {
    const file = byName.get(name.replace(/-/g, '_'));
    if (!file) throw new Error(`the guest kernel has no module ${name}`);
    if (order.includes(file)) return;
    for (const d of moduleDepends(fs.readFileSync(path.join(modulesDir, file)))) visit(d);
    order.push(file);
  };
  for (const name of wanted) visit(name);
  return order;
}

function hashTree(h: ReturnType<typeof createHash>, p: string): void {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(p).sort()) hashTree(h, path.join(p, e));
  } else {
    h.update(p.slice(repoRoot.length));
    h.update(fs.readFileSync(p));
  }
}

/** node-pty's runtime files only (no sources, no build intermediates). */
const PTY_FILES = ['package.json', 'lib', 'build/Release/pty.node'];

export async function ensureInitrd(base: BaseImage, say: Say): Promise<string> {
  const h = createHash('sha256');
  h.update(base.hash);
  h.update(fs.readFileSync(path.join(here, 'initramfs-init.sh')));
  h.update(fs.readFileSync(path.join(here, 'guest-init.sh')));
  h.update(fs.readFileSync(path.join(here, 'initrd.ts')));
  h.update(fs.readFileSync(SIDECAR_BUNDLE));
  for (const f of PTY_FILES) hashTree(h, path.join(nodePty, f));
  const file = path.join(cacheRoot(), `initrd-${h.digest('hex').slice(0, 16)}.img`);
  if (fs.existsSync(file)) return file;

  say('[image] building the initramfs (busybox, virtio modules, sidecar)…');
  const work = fs.mkdtempSync(path.join(cacheRoot(), '.initrd-'));
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'modules', 'lia/node_modules/node-pty/build/Release'])
      fs.mkdirSync(path.join(work, d), { recursive: true });
    fs.copyFileSync(base.busybox, path.join(work, 'bin/busybox'));
    fs.chmodSync(path.join(work, 'bin/busybox'), 0o755);
    fs.copyFileSync(path.join(here, 'initramfs-init.sh'), path.join(work, 'init'));
    fs.chmodSync(path.join(work, 'init'), 0o755);
    const order = moduleOrder(base.modules, WANTED_MODULES);
    for (const m of order)
      fs.copyFileSync(path.join(base.modules, m), path.join(work, 'modules', path.basename(m)));
    fs.writeFileSync(path.join(work, 'modules/order'), `${order.map((m) => path.basename(m)).join('\n')}\n`);
    fs.copyFileSync(SIDECAR_BUNDLE, path.join(work, 'lia/sidecar.mjs'));
    fs.copyFileSync(path.join(here, 'guest-init.sh'), path.join(work, 'lia/init'));
    fs.chmodSync(path.join(work, 'lia/init'), 0o755);
    for (const f of PTY_FILES)
      fs.cpSync(path.join(nodePty, f), path.join(work, 'lia/node_modules/node-pty', f), { recursive: true });
    const list = (await run(say, 'find', ['.', '-mindepth', '1'], { cwd: work, quiet: true })).trim();
    const tmp = `${file}.tmp`;
    // cpio reads the file list on stdin and writes the archive to stdout.
    const cpio = spawn('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: work });
    const exited = new Promise<void>((resolve, reject) => {
      cpio.on('error', reject);
      cpio.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cpio failed (exit ${code})`))));
    });
    cpio.stdin.end(`${list}\n`);
    await Promise.all([pipeline(cpio.stdout, fs.createWriteStream(tmp)), exited]);
    fs.renameSync(tmp, file);
    return file;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
