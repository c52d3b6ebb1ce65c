/** The guest kernel's command line: the TSC rate is given under emulation, never under KVM. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostTscKhz, kernelCommandLine } from '../../vm/drivers/qemu/driver.js';

const cpuinfo = (flags: string) => `processor\t: 0\ncpu MHz\t\t: 2596.148\nflags\t\t: fpu ${flags} sse\n`;

test('the host TSC rate comes from /proc/cpuinfo only when the TSC is constant', () => {
  assert.equal(hostTscKhz(cpuinfo('constant_tsc nonstop_tsc')), 2596148);
  assert.equal(hostTscKhz(cpuinfo('nonstop_tsc')), undefined);
  assert.equal(hostTscKhz('flags : constant_tsc\n'), undefined);
});

test('TCG guests are told the TSC rate (no PIT calibration); KVM guests are not', () => {
  assert.match(kernelCommandLine('tcg', 2596148), /(^| )tsc_early_khz=2596148( |$)/);
  assert.doesNotMatch(kernelCommandLine('kvm', 2596148), /tsc_early_khz/);
  assert.doesNotMatch(kernelCommandLine('tcg', undefined), /tsc_early_khz/);
  assert.match(kernelCommandLine('tcg', 1), /console=ttyS0/);
});

test('QEMU runs sandboxed, with no network device and no path of its own to open', async () => {
  const { qemuArgs } = await import('../../vm/drivers/qemu/args.js');
  const artifacts = {
    profile: 'qemu' as const,
    kernel: { path: '/cache/vmlinuz', type: 'bzimage' as const },
    initrd: '/cache/initrd.img',
    rootfs: { path: '/cache/rootfs.ext4', format: 'raw' as const },
    taskDisk: 'qcow2-overlay' as const,
    hash: 'h',
  };
  const args = qemuArgs({
    name: 'lia-t_x',
    accel: 'tcg',
    artifacts,
    memoryMib: 256,
    vcpus: 1,
    sockets: { qmp: '/run/q.sock', session: '/run/s.sock', egress: '/run/e.sock' },
    fds: { kernel: 3, initrd: 4, disk: 5, base: 6 },
  });
  const line = args.join(' ');
  assert.equal(
    args[args.indexOf('-sandbox') + 1],
    'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
  );
  assert.doesNotMatch(line, /-netdev|virtio-net|-nic|guestfwd/, 'no network device');
  assert.doesNotMatch(line, /\/cache\//, 'image files are passed as descriptors');
  assert.match(line, /-kernel \/proc\/self\/fd\/3 -initrd \/proc\/self\/fd\/4/);
  assert.match(line, /backing\.file\.filename=\/proc\/self\/fd\/6/);
  assert.match(line, /name=lia\.sidecar.*name=lia\.egress/);
  // The Firecracker artifacts: the ELF kernel, a raw disk.
  const fc = qemuArgs({
    name: 'lia-t_x',
    accel: 'tcg',
    artifacts: {
      ...artifacts,
      profile: 'firecracker',
      taskDisk: 'raw-copy',
      kernel: { path: '/v', type: 'elf-pvh' },
    },
    memoryMib: 256,
    vcpus: 1,
    sockets: { qmp: '/q', session: '/s', egress: '/e' },
    fds: { kernel: 3, initrd: 4, disk: 5 },
  }).join(' ');
  assert.match(
    fc,
    /-blockdev driver=raw,node-name=root,file\.driver=file,file\.filename=\/proc\/self\/fd\/5 /,
  );
});
