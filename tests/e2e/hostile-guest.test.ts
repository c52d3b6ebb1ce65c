/**
 * Everything from a guest is hostile input. A guest whose sidecar breaks the protocol — an exit
 * code that is not an integer, a negative seq, a frame larger than the host takes — has its
 * session dropped, and its task ends `failed` with the reason: it never wedges the task (the
 * first host retried a record with a bad exit code forever) and never makes the host buffer
 * more than one bounded frame.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;
const OWNER = 'u-hostile';
let t: ReturnType<typeof taskOps>;
const fakes: ChildProcess[] = [];

before(async () => {
  s = await startTestStack('hostile', { LIA__QUOTA__LIVE_TASKS_PER_USER: '5' });
  t = taskOps(s, OWNER);
});
after(async () => {
  for (const f of fakes) f.kill('SIGKILL');
  await s?.close();
});

/** Replaces a running task's sidecar with a hostile one on the same socket. */
async function turnHostile(taskId: string, mode: string): Promise<void> {
  process.kill(t.sidecarPid(taskId), 'SIGKILL');
  const socket = path.join(t.vmDir(taskId), 'sidecar.sock');
  const fake = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'tests/fixtures/hostile-sidecar.ts'), socket, mode],
    {
      stdio: 'inherit',
    },
  );
  fakes.push(fake);
  fs.writeFileSync(path.join(t.vmDir(taskId), 'sidecar.pid'), String(fake.pid));
}

for (const [mode, reason] of [
  ['bad-exit', /broke the sidecar protocol: code: .*int/i],
  ['bad-seq', /broke the sidecar protocol: seq: /],
  ['huge-frame', /broke the sidecar protocol: bad frame: .*body 16777216 bytes \(at most .* and 524288\)/],
] as const) {
  test(`a guest that sends ${mode.replace('-', ' ')}: the task ends failed with the reason`, async () => {
    const { taskId } = await t.spawnShell(3600);
    await t.waitStatus(taskId, 'running');
    await turnHostile(taskId, mode);
    const v = await t.waitStatus(taskId, 'failed', 60_000);
    assert.match(v.error ?? '', reason);
    assert.equal(fs.existsSync(t.vmDir(taskId)), false, 'cleaned up');
  });
}
