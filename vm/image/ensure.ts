/**
 * The guest image a VM boots: the cached base image (kernel, root disk) and the initramfs with
 * Lia's guest files, built where missing. One build at a time per machine (a lock in the
 * cache), so a test run and `./lia start` never build the same thing twice.
 *   node --import tsx vm/image/ensure.ts     builds (or finds) it and prints where it is
 */
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ensureSidecarBuilt } from '../sidecar/build.js';
import { cacheRoot, ensureBaseImage, type Say } from './base.js';
import { ensureInitrd } from './initrd.js';
import { ensureVmlinux } from './vmlinux.js';

/** Every file of the guest image; vm/image/artifacts.ts says which a driver boots. */
export interface GuestImage {
  /** The distribution's kernel (bzImage). */
  kernel: string;
  /** The same kernel uncompressed (ELF, with a PVH entry), for Firecracker. */
  vmlinux: string;
  initrd: string;
  /** The root file system, raw ext4; never written: every task gets its own disk from it. */
  rootfs: string;
  /** The base image's hash, and the initramfs's. */
  hash: string;
}

export async function ensureGuestImage(say: Say): Promise<GuestImage> {
  fs.mkdirSync(cacheRoot(), { recursive: true });
  await ensureSidecarBuilt();
  const release = await lockfile.lock(cacheRoot(), {
    lockfilePath: `${cacheRoot()}/.build.lock`,
    stale: 60_000,
    update: 10_000,
    retries: { retries: 600, minTimeout: 1000, maxTimeout: 2000 },
    onCompromised: (err) => say(`[image] build lock lost: ${err.message}`),
  });
  try {
    const base = await ensureBaseImage(say);
    const initrd = await ensureInitrd(base, say);
    const vmlinux = await ensureVmlinux(base.kernel, say);
    const initrdHash = path.basename(initrd).replace(/^initrd-|\.img$/g, '');
    return { kernel: base.kernel, vmlinux, initrd, rootfs: base.rootfs, hash: `${base.hash}-${initrdHash}` };
  } finally {
    await release();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const img = await ensureGuestImage((m) => process.stderr.write(`${m}\n`));
  process.stdout.write(`${JSON.stringify(img, null, 2)}\n`);
}
