/**
 * Which of the guest image's files a driver boots, and how a task gets its own disk. One
 * image, built once from the same Debian packages; two ways to boot it:
 *
 * | profile       | kernel                        | root disk per task                      |
 * | ------------- | ----------------------------- | --------------------------------------- |
 * | `qemu`        | the distribution's bzImage    | qcow2 overlay over the raw ext4         |
 * | `firecracker` | ELF vmlinux from that bzImage | copy of the raw ext4 (reflink if cheap) |
 *
 * Both with the same initramfs (virtio-mmio, virtio-blk, virtio-console, vsock, the sidecar).
 * Firecracker reads only raw images and boots only an uncompressed kernel; QEMU boots both, so
 * the `firecracker` profile also runs under QEMU's microvm machine (the ELF through its PVH
 * entry; virtio-mmio devices described in ACPI tables, as Firecracker describes them since
 * 1.8), which is how the Firecracker artifacts are tested on a host without Firecracker.
 */
import type { GuestImage } from './ensure.js';

export type BootProfile = 'qemu' | 'firecracker';
export type KernelType = 'bzimage' | 'elf-pvh';
export type TaskDisk = 'qcow2-overlay' | 'raw-copy';

export interface BootArtifacts {
  profile: BootProfile;
  kernel: { path: string; type: KernelType };
  initrd: string;
  rootfs: { path: string; format: 'raw' };
  taskDisk: TaskDisk;
  /** Changes whenever any of the files does. */
  hash: string;
}

export function bootArtifacts(image: GuestImage, profile: BootProfile): BootArtifacts {
  const common = { profile, initrd: image.initrd, rootfs: { path: image.rootfs, format: 'raw' as const } };
  return profile === 'qemu'
    ? {
        ...common,
        kernel: { path: image.kernel, type: 'bzimage' },
        taskDisk: 'qcow2-overlay',
        hash: image.hash,
      }
    : { ...common, kernel: { path: image.vmlinux, type: 'elf-pvh' }, taskDisk: 'raw-copy', hash: image.hash };
}
