/**
 * A task's own root disk, from the image's raw ext4 (vm/image/artifacts.ts says which kind):
 *   qcow2-overlay  a qcow2 file over the raw image (QEMU): instant, only what the task writes
 *   raw-copy       a raw copy (Firecracker reads only raw files): a reflink where the file
 *                  system has them (XFS, btrfs: instant, copy-on-write), a sparse copy
 *                  elsewhere (only the image's used blocks, about 700 MiB here, ~1–3 s)
 *   over a template  a qcow2 overlay over the template's disk (vm/template/): the disk as the
 *                    template's guest left it when it was snapshotted, shared read-only
 * Grown to the task's size (the guest grows its file system); readable by its owner only.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { TaskDisk } from './image/artifacts.js';

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d.toString();
    });
    p.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed: ${err.trim()}`))));
  });
}

export async function createTaskDisk(
  kind: TaskDisk,
  base: string,
  dest: string,
  sizeGb: number,
  owner?: { uid: number; gid: number },
  /** The base's format: the raw image, or a template's qcow2 disk (itself over the image). */
  baseFormat: 'raw' | 'qcow2' = 'raw',
): Promise<void> {
  const tmp = `${dest}.tmp`;
  fs.rmSync(tmp, { force: true });
  if (kind === 'qcow2-overlay') {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, tmp, `${sizeGb}G`]);
  } else {
    await run('cp', ['--reflink=auto', '--sparse=always', base, tmp]);
    const size = sizeGb * 1024 ** 3;
    if (fs.statSync(tmp).size < size) fs.truncateSync(tmp, size);
  }
  fs.chmodSync(tmp, 0o600);
  if (owner) fs.chownSync(tmp, owner.uid, owner.gid);
  fs.renameSync(tmp, dest);
}
