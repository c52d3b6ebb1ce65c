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
import { repoRoot, waitFor } from '../helpers/env.js';
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
async function turnHostile(taskId: string, mode: string): Promise<ChildProcess> {
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
  return fake;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
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

test('a guest that stops reading while the owner types 40 MiB: the host stays bounded, nothing is lost', async () => {
  const { taskId } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  const fake = await turnHostile(taskId, 'stop-reading');
  const countFile = path.join(t.vmDir(taskId), 'sidecar.sock.count');
  await waitFor('the pump to attach to the guest', () => fs.existsSync(countFile), 60_000);
  await new Promise((r) => setTimeout(r, 1000));
  const host = s.hostWorker().pid!;
  const base = rssOf(host);
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(host));
  }, 50);
  const total = 40 * 1024 * 1024;
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const actor = { userId: OWNER, admin: false };
  for (let sent = 0; sent < total; sent += piece.length) await s.tasks.input(actor, taskId, piece, 'running');
  await new Promise((r) => setTimeout(r, 3000));
  clearInterval(sampler);
  const grew = peak - base;
  process.stderr.write(
    `host worker RSS: ${(base / 2 ** 20).toFixed(0)} MiB, peak +${(grew / 2 ** 20).toFixed(1)} MiB while 40 MiB were typed to a guest that reads nothing\n`,
  );
  assert.ok(grew < 24 * 1024 * 1024, `the host worker grew by ${(grew / 2 ** 20).toFixed(1)} MiB`);
  const { rows } = await s.pool.query(
    'SELECT coalesce(sum(length(data)), 0)::int AS n FROM task_input WHERE task_id = $1',
    [taskId],
  );
  assert.ok(rows[0].n > 30 * 1024 * 1024, `the input waits in PostgreSQL (${rows[0].n} bytes)`);
  // The guest reads again: every byte typed arrives, once.
  fake.kill('SIGUSR1');
  await waitFor(
    'all 40 MiB to reach the guest',
    () => Number(fs.readFileSync(countFile, 'utf8')) >= total,
    120_000,
    200,
  );
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(Number(fs.readFileSync(countFile, 'utf8')), total);
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
  await t.waitStatus(taskId, 'terminated');
});

test('a guest that sends a bad diff: refused with the reason, nothing stored, the task goes on', async () => {
  const { taskId } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  // A task with a repository (the forge itself plays no part here: the diff comes from the guest).
  await s.pool.query("UPDATE tasks SET repo_owner = 'acme', repo_name = 'widgets' WHERE id = $1", [taskId]);
  await turnHostile(taskId, 'bad-diff');
  const r = await s.api('GET', `/api/v1/tasks/${taskId}/diff`, OWNER);
  assert.equal(r.status, 503, JSON.stringify(r.json));
  assert.match(r.json.error.message, /the guest sent a bad diff \((base|files\.0\.added)/);
  const stored = await s.pool.query('SELECT doc, error FROM task_diffs WHERE task_id = $1', [taskId]);
  assert.equal(stored.rows[0].doc, null, 'nothing of it stored');
  assert.match(stored.rows[0].error, /bad diff/);
  assert.equal(await t.statusOf(taskId), 'running', 'the task goes on');
  await t.stop(taskId);
});

test('a guest that floods questions: the workflow hears of a paced few, the task goes on', async () => {
  const { taskId } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  await turnHostile(taskId, 'question-flood');
  const signals = async () =>
    ((await s.temporal.client.workflow.getHandle(taskId).fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'agentQuestion',
    ).length;
  await waitFor(
    'the first questions to reach the workflow',
    async () => (await signals()) >= 10,
    30_000,
    250,
  );
  await new Promise((r) => setTimeout(r, 6000));
  const n = await signals();
  assert.ok(n <= 10 + 8, `a burst of 10, then one per 2 s: ${n} signals`);
  assert.equal(await t.statusOf(taskId), 'running', 'the task goes on');
  const conv = (await s.api('GET', `/api/v1/tasks/${taskId}/conversation`, OWNER)).json;
  assert.ok(conv.questions.length <= 16, `at most 16 wait: ${conv.questions.length}`);
  for (const q of conv.questions)
    assert.ok(!q.summary.includes('\x1b') && !q.summary.includes('\x07'), 'escapes stripped');
  await t.stop(taskId);
});
