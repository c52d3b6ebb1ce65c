/**
 * Templates at the qemu driver (no Temporal), in a private template folder: built once per
 * image and size and found again (not rebuilt); a change to an image input (the initramfs)
 * gives a new template, and the old one stays for the disks made over it; a VM starts from the
 * new one; a template that does not restore falls back to a cold boot, with the reason; a pool
 * of spares restored ahead, one taken by a task (not a stray), refilled, emptied at the end.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger } from '../../common/logger.js';
import { QemuDriver } from '../../vm/drivers/qemu/driver.js';
import { ensureGuestImage, type GuestImage } from '../../vm/image/ensure.js';
import { detectCgroups } from '../../vm/process/cgroup.js';
import { UidPool } from '../../vm/process/uids.js';
import { SidecarConnection } from '../../vm/sidecar/client.js';

const hasQemu = fs.existsSync('/usr/bin/qemu-system-x86_64');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-tpl-'));
const templateDir = path.join(work, 'templates');
const stateDir = path.join(work, 'state');
const size = { vcpus: 1, memoryMib: 256, storageGb: 2 };
const logger = createLogger('qemu-template', 'warn');
const root = process.getuid?.() === 0;
let image: GuestImage;
const drivers: QemuDriver[] = [];

function driverFor(img: GuestImage, poolSize = 0): QemuDriver {
  const d = new QemuDriver({
    pool: { size: poolSize, spec: size },
    stateDir,
    hostId: 'tpl',
    image: img,
    accel: 'tcg',
    logger,
    templateDir,
    cgroups: root ? detectCgroups().system : undefined,
    uids: root ? new UidPool(path.join(stateDir, 'uids'), 930_000) : undefined,
  });
  drivers.push(d);
  return d;
}

before(async () => {
  if (hasQemu) image = await ensureGuestImage(() => {});
});
after(async () => {
  for (const d of drivers) for (const id of await d.list()) await d.destroy(id).catch(() => {});
  fs.rmSync(work, { recursive: true, force: true });
});

const meta = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'template.json'), 'utf8'));

test('a template per image and size: found again, and rebuilt when an image input changes', {
  skip: !hasQemu && 'no QEMU',
}, async () => {
  const d1 = driverFor(image);
  const t1 = await d1.ensureTemplate(size, () => {});
  assert.ok(fs.existsSync(t1.state) && fs.existsSync(t1.memory) && fs.existsSync(t1.disk));
  assert.equal(fs.statSync(t1.memory).size, size.memoryMib * 2 ** 20, 'the memory file is the RAM');
  assert.ok(fs.statSync(t1.state).size < 16 * 2 ** 20, 'the state leaves the memory out');
  const builtAt = meta(t1.dir).builtAt;
  // Found again, by a new driver too (a restarted worker): not rebuilt.
  const again = await driverFor(image).ensureTemplate(size, () => {});
  assert.equal(again.key, t1.key);
  assert.equal(meta(again.dir).builtAt, builtAt, 'not rebuilt');
  // Another size is another template.
  assert.notEqual(d1.templateFor({ ...size, memoryMib: 512 }).key, t1.key);

  // An image input changes: the initramfs (here: padding the kernel skips, so it still boots).
  const initrd2 = path.join(work, 'initrd-changed.img');
  fs.copyFileSync(image.initrd, initrd2);
  fs.appendFileSync(initrd2, Buffer.alloc(512));
  const h = createHash('sha256').update(fs.readFileSync(initrd2)).digest('hex').slice(0, 16);
  const image2: GuestImage = { ...image, initrd: initrd2, hash: `${image.hash.split('-')[0]}-${h}` };
  const d2 = driverFor(image2);
  const t2 = await d2.ensureTemplate(size, () => {});
  assert.notEqual(t2.key, t1.key, 'a new template for the new image');
  assert.equal(meta(t2.dir).inputs.image, image2.hash);
  assert.ok(fs.existsSync(t1.dir), 'the old template stays (disks made over it need it)');

  // A VM starts from the new template, and answers.
  const info = await d2.boot({ taskId: 't_tplnew0001', ...size }, () => {});
  assert.deepEqual(info, { from: 'template', template: t2.key });
  const conn = await SidecarConnection.open(await d2.connect('t_tplnew0001'), 15_000);
  assert.equal(conn.hello.agent, 'idle');
  conn.close();
  await d2.destroy('t_tplnew0001');
  assert.ok(fs.existsSync(t2.state), "destroying the task leaves its template's files");
});

test('a template that does not restore: the VM boots cold, and says why', {
  skip: !hasQemu && 'no QEMU',
}, async () => {
  const d = driverFor(image);
  const t = await d.ensureTemplate(size, () => {});
  // Damage the machine state (a template of its own, so the first test's stays whole).
  const saved = fs.readFileSync(t.state);
  fs.writeFileSync(t.state, saved.subarray(0, 4096));
  try {
    const info = await d.boot({ taskId: 't_tplbroken1', ...size }, () => {});
    assert.equal(info?.from, 'cold');
    assert.match(info?.reason ?? '', /template did not start/);
    const conn = await SidecarConnection.open(await d.connect('t_tplbroken1'), 15_000);
    conn.close();
  } finally {
    fs.writeFileSync(t.state, saved);
    await d.destroy('t_tplbroken1');
  }
});

test('a pool of spares: a task takes one (its VM, not a stray), the pool refills, stopPool empties it', {
  skip: !hasQemu && 'no QEMU',
}, async () => {
  const d = driverFor(image, 1);
  const spares = async () => (await d.list()).filter((id) => id.startsWith('spare-'));
  await d.startPool();
  const { waitFor } = await import('../helpers/env.js');
  await waitFor('a spare VM', async () => d.sparesReady === 1, 120_000, 100);
  const spare = (await spares())[0]!;
  const t0 = Date.now();
  const info = await d.boot({ taskId: 't_tplpool001', ...size }, () => {});
  const tookMs = Date.now() - t0;
  assert.equal(info?.from, 'template');
  assert.equal(info?.pooled, true, `took the spare (${JSON.stringify(info)})`);
  assert.ok(tookMs < 2000, `taking a spare is quick (${tookMs} ms)`);
  assert.ok(!(await d.list()).includes(spare), 'the spare is now the task’s');
  const conn = await SidecarConnection.open(await d.connect('t_tplpool001'), 15_000);
  assert.equal(conn.hello.agent, 'idle');
  conn.close();
  assert.deepEqual(await d.strays(), [], 'its QEMU is no stray under its new name');
  // Suspend and restore work on it as on any VM.
  await d.suspend('t_tplpool001', () => {});
  await d.restore('t_tplpool001', () => {});
  (await SidecarConnection.open(await d.connect('t_tplpool001'), 15_000)).close();
  await waitFor('the pool to refill', async () => d.sparesReady === 1, 120_000, 100);
  await d.destroy('t_tplpool001');
  assert.deepEqual(await d.strays(), []);
  await d.stopPool();
  assert.deepEqual(await spares(), [], 'no spare left');
  if (root) assert.deepEqual(fs.readdirSync(path.join(stateDir, 'uids')), [], 'every uid released');
});
