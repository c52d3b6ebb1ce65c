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
