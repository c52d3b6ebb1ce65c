/** VM uids: one per task, kept across a restart, and never one a live process already runs as. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UidPool } from '../../vm/process/uids.js';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lia-uids-'));

test('each task gets its own uid, the same one again, and frees it', () => {
  const pool = new UidPool(dir(), 4_100_000);
  const a = pool.claim('t_aaaaaaaaaa');
  const b = pool.claim('t_bbbbbbbbbb');
  assert.notEqual(a, b);
  assert.equal(new UidPool((pool as unknown as { dir: string }).dir, 4_100_000).claim('t_aaaaaaaaaa'), a);
  pool.release('t_aaaaaaaaaa');
  assert.equal(pool.claim('t_cccccccccc'), a);
});

test('a uid a live process runs as (another Lia on this machine) is skipped', {
  skip: process.getuid?.() !== 0 && 'needs root',
}, async () => {
  const base = 4_200_000;
  const other = spawn('sleep', ['30'], { uid: base, gid: base, stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(new UidPool(dir(), base).claim('t_aaaaaaaaaa'), base + 1);
  } finally {
    other.kill('SIGKILL');
  }
});
