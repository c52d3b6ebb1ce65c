/**
 * The qemu driver's restore, at the driver (no Temporal): one that is interrupted after QEMU
 * has started (a worker that died mid-restore, a cancelled activity) and then retried leaves
 * exactly one QEMU; one that fails keeps the snapshot, so the task can stay suspended with
 * the reason and be tried again.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import type { VmDriver } from '../../vm/driver.js';
import { selectDriver } from '../../vm/select.js';

const hasQemu = fs.existsSync('/usr/bin/qemu-system-x86_64');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-qrestore-'));
const taskId = 't_qemurestor';
let driver: VmDriver;

/** QEMU processes of the task, found by name (not by the pid file the driver rewrites). */
function qemus(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => {
      if (!/^\d+$/.test(p)) return false;
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return (
          cmd.includes('qemu-system') &&
          cmd.includes(`lia-${taskId}`) &&
          !fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z')
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

before(async () => {
  if (!hasQemu) return;
  const config = loadConfig({
    LIA__VM__DRIVER: 'qemu',
    LIA__STATE__DIR: stateDir,
    LIA__HOST__ID: 'qrestore',
  });
  driver = await selectDriver(config, createLogger('qrestore', 'warn'));
  await driver.boot({ taskId, vcpus: 1, memoryMib: 256, storageGb: 2 }, () => {});
});
after(async () => {
  await driver?.destroy(taskId).catch(() => {});
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('a restore interrupted after QEMU started, then retried, leaves one QEMU', {
  skip: !hasQemu && 'no QEMU',
}, async () => {
  await driver.suspend(taskId, () => {});
  assert.deepEqual(qemus(), []);
  const ac = new AbortController();
  const interrupted = driver.restore(
    taskId,
    (m) => {
      // QEMU is being launched from the state file: the attempt stops right after.
      if (/loading the machine state/.test(m)) ac.abort();
    },
    ac.signal,
  );
  await assert.rejects(interrupted, /cancelled/);
  assert.equal(qemus().length, 1, 'the interrupted attempt left its QEMU');
  await driver.restore(taskId, () => {});
  assert.equal(qemus().length, 1, 'the retry replaced it: one QEMU');
  assert.equal(fs.existsSync(path.join(stateDir, 'hosts/qrestore/vms', taskId, 'suspended')), false);
});

test('a restore that fails keeps the snapshot', { skip: !hasQemu && 'no QEMU' }, async () => {
  await driver.suspend(taskId, () => {});
  const dir = path.join(stateDir, 'hosts/qrestore/vms', taskId);
  // A damaged state file: QEMU refuses it.
  fs.writeFileSync(path.join(dir, 'state.bin'), Buffer.alloc(4096, 0x5a));
  await assert.rejects(
    driver.restore(taskId, () => {}),
    /QEMU exited while loading the saved machine state/,
  );
  assert.ok(fs.existsSync(path.join(dir, 'state.bin')), 'the snapshot is kept');
  assert.ok(fs.existsSync(path.join(dir, 'suspended')), 'still suspended');
  assert.deepEqual(qemus(), []);
});
