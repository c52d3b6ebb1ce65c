/** Templates: what their key is made of, and the QEMU command line of a template and of its clones. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qemuArgs } from '../../vm/drivers/qemu/args.js';
import { type TemplateInputs, templateKey } from '../../vm/template/template.js';

const inputs: TemplateInputs = {
  driver: 'qemu',
  image: 'base-init',
  profile: 'qemu',
  vmm: 'QEMU emulator version 7.2.22',
  accel: 'tcg',
  vcpus: 1,
  memoryMib: 256,
  storageGb: 4,
};

test('a template key changes with every input, and only with them', () => {
  const key = templateKey(inputs);
  assert.match(key, /^[0-9a-f]{16}$/);
  assert.equal(templateKey({ ...inputs }), key, 'the same inputs, the same key');
  for (const [k, v] of Object.entries({
    driver: 'firecracker',
    image: 'base-init2',
    profile: 'firecracker',
    vmm: 'QEMU emulator version 8.2',
    accel: 'kvm',
    vcpus: 2,
    memoryMib: 512,
    storageGb: 50,
  }))
    assert.notEqual(templateKey({ ...inputs, [k]: v }), key, `${k} is part of the key`);
});

const artifacts = {
  profile: 'qemu' as const,
  kernel: { path: '/cache/vmlinuz', type: 'bzimage' as const },
  initrd: '/cache/initrd.img',
  rootfs: { path: '/cache/rootfs.ext4', format: 'raw' as const },
  taskDisk: 'qcow2-overlay' as const,
  hash: 'h',
};
const base = {
  name: 'lia-t_x',
  accel: 'tcg' as const,
  artifacts,
  memoryMib: 256,
  vcpus: 1,
  sockets: { qmp: '/run/q.sock', session: '/run/s.sock', egress: '/run/e.sock' },
};

test('the template runs on its memory file, shared; a clone maps it private and waits for its state', () => {
  const tpl = qemuArgs({
    ...base,
    fds: { kernel: 3, initrd: 4, disk: 5, base: 6, memory: 7 },
    memory: 'template',
  }).join(' ');
  assert.match(tpl, /-M microvm,[^ ]*memory-backend=mem/);
  assert.match(tpl, /memory-backend-file,id=mem,size=256M,mem-path=\/proc\/self\/fd\/7,share=on/);
  assert.doesNotMatch(tpl, /-incoming/);

  const clone = qemuArgs({
    ...base,
    fds: { kernel: 3, initrd: 4, disk: 5, base: 6, template: 7, memory: 8, incoming: 9 },
    memory: 'clone',
  }).join(' ');
  assert.match(clone, /memory-backend-file,id=mem,size=256M,mem-path=\/proc\/self\/fd\/8,share=off/);
  // Its state comes over QMP, once x-ignore-shared is set.
  assert.match(clone, /-incoming defer/);
  assert.doesNotMatch(clone, /-incoming fd:/);
  // task overlay → the template's disk → the image, all read-only below the task's.
  assert.match(
    clone,
    /file\.filename=\/proc\/self\/fd\/5,backing\.driver=qcow2,backing\.file\.driver=file,backing\.file\.filename=\/proc\/self\/fd\/7,backing\.read-only=on,backing\.backing\.driver=raw,[^ ]*backing\.backing\.file\.filename=\/proc\/self\/fd\/6,backing\.backing\.read-only=on/,
  );

  // Its own snapshot, restored: anonymous memory under the template's RAM block name.
  const own = qemuArgs({
    ...base,
    fds: { kernel: 3, initrd: 4, disk: 5, base: 6, template: 7, incoming: 8 },
    memory: 'ram',
  }).join(' ');
  assert.match(own, /memory-backend-ram,id=mem,size=256M/);
  assert.match(own, /-incoming fd:8/);

  // A cold boot is as before: no backend, no template.
  const cold = qemuArgs({ ...base, fds: { kernel: 3, initrd: 4, disk: 5, base: 6 } }).join(' ');
  assert.doesNotMatch(cold, /memory-backend|memory-backend=|backing\.backing/);
});
