/**
 * Templates: a VM booted once per image version and VM size, snapshotted after its sidecar's
 * hello, before any task exists; every task VM is then restored from it instead of booting.
 * This file says where a template lives, what its key is made of, and holds the build lock;
 * ensure.ts finds or builds one, build.ts is a build's frame, boot.ts a boot's fallback to cold.
 * Each driver's own steps — booting, snapshotting, restoring — are in its driver (QEMU:
 * vm/drivers/qemu/driver.ts; Firecracker: vm/drivers/firecracker/driver.ts).
 *
 * Cached beside the image, under ~/.cache/lia/templates/<key>/ (or LIA__VM__TEMPLATE_DIR),
 * keyed by a hash of every input: the image's hash (base image + initramfs, so a change to the
 * sidecar or the guest's init rebuilds it), the driver and its artifacts, the VMM's version, the
 * acceleration, the VM's size. A template is never changed once built; a new key is a new
 * folder. Old templates are kept: task disks made over them still need them (a later `gc` may
 * remove those no VM refers to; not done yet).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';

/** Bumped when what a template holds, or how it is made, changes. */
export const TEMPLATE_FORMAT = 1;

export interface TemplateInputs {
  driver: string;
  /** The image's hash (base image and initramfs). */
  image: string;
  profile: string;
  vmm: string;
  accel: string;
  vcpus: number;
  memoryMib: number;
  storageGb: number;
}

export interface TemplateMeta {
  key: string;
  inputs: TemplateInputs;
  format: number;
  builtAt: string;
  /** Boot to the sidecar's hello, and the snapshot, while building. */
  bootMs: number;
  snapshotMs: number;
  /** The image file the template's disk is a layer over (a VM's disk chain must keep it). */
  base?: string;
}

export function defaultTemplateRoot(): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(process.env.HOME ?? '/root', '.cache');
  return path.join(base, 'lia', 'templates');
}

export function templateKey(inputs: TemplateInputs): string {
  const canonical = JSON.stringify({ format: TEMPLATE_FORMAT, ...inputs }, Object.keys(inputs).sort());
  return createHash('sha256')
    .update(JSON.stringify({ format: TEMPLATE_FORMAT, inputs: canonical }))
    .digest('hex')
    .slice(0, 16);
}

/** The template of a driver's VMs of this size: its key and inputs (built or not). */
export function templateFor(
  vm: Pick<TemplateInputs, 'driver' | 'image' | 'profile' | 'vmm' | 'accel'>,
  size: Pick<TemplateInputs, 'vcpus' | 'memoryMib' | 'storageGb'>,
): { key: string; inputs: TemplateInputs } {
  // In this order: it is template.json's.
  const inputs: TemplateInputs = {
    driver: vm.driver,
    image: vm.image,
    profile: vm.profile,
    vmm: vm.vmm,
    accel: vm.accel,
    vcpus: size.vcpus,
    memoryMib: size.memoryMib,
    storageGb: size.storageGb,
  };
  return { key: templateKey(inputs), inputs };
}

/** A built template's folder (with its meta), or undefined. */
export function findTemplate(root: string, key: string): { dir: string; meta: TemplateMeta } | undefined {
  const dir = path.join(root, key);
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'template.json'), 'utf8')) as TemplateMeta;
    return meta.key === key ? { dir, meta } : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `fn` holding the templates' build lock (one build at a time per machine). */
export async function withTemplateLock<T>(root: string, say: (m: string) => void, fn: () => Promise<T>) {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const release = await lockfile.lock(root, {
    lockfilePath: path.join(root, '.build.lock'),
    stale: 60_000,
    update: 10_000,
    retries: { retries: 600, minTimeout: 500, maxTimeout: 2000 },
    onCompromised: (err) => say(`[template] build lock lost: ${err.message}`),
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Moves a finished build into place (atomically: a half-built template is never found). */
export function publishTemplate(root: string, work: string, meta: TemplateMeta): string {
  fs.writeFileSync(path.join(work, 'template.json'), JSON.stringify(meta, null, 2), { mode: 0o644 });
  const dir = path.join(root, meta.key);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(work, dir);
  return dir;
}
