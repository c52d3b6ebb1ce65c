/**
 * The guest image a VM boots: the cached base image (kernel, root disk) and the initramfs with
 * Lia's guest files, built where missing. One build at a time per machine (a lock in the
 * cache), so a test run and `./lia start` never build the same thing twice.
 *   node --import tsx vm/image/ensure.ts     builds (or finds) it and prints where it is
 */
import fs from 'node:fs';
import lockfile from 'proper-lockfile';
import { ensureSidecarBuilt } from '../sidecar/build.js';
import { cacheRoot, ensureBaseImage, type Say } from './base.js';
import { ensureInitrd } from './initrd.js';

export interface GuestImage {
  kernel: string;
  /** An uncompressed kernel, for VMMs that need one (Firecracker); absent when not built. */
  vmlinux?: string;
  initrd: string;
  /** The base root disk (qcow2); every VM gets a copy-on-write overlay of it. */
  rootfs: string;
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
    return { kernel: base.kernel, initrd, rootfs: base.rootfs, hash: base.hash };
  } finally {
    await release();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const img = await ensureGuestImage((m) => process.stderr.write(`${m}\n`));
  process.stdout.write(`${JSON.stringify(img, null, 2)}\n`);
}
