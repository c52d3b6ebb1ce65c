/**
 * The task workflow under pressure, with the local driver on the real Temporal dev server and
 * PostgreSQL: continue-as-new (forced often with a small history limit) carries the state, the
 * memo and the search attributes; a resume that arrives while the task is suspending is
 * honoured (the first workflow deadlocked there when continue-as-new was due); a terminate in
 * the middle of a storm of continue-as-new ends the task; resume and terminate cannot race
 * into a wrong answer; a failed restore keeps the task suspended with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { CHANNELS } from '../../common/db/channels.js';
import type { TaskState } from '../../common/task.js';
import { sessionPids } from '../../system/procs.js';
import { stateQuery } from '../../workflows/definitions.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;
const OWNER = 'u-durable';
let t: ReturnType<typeof taskOps>;

before(async () => {
  s = await startTestStack('durable_wf', { LIA__TEMPORAL__MAX_HISTORY_EVENTS: '30' });
  t = taskOps(s, OWNER);
});
after(async () => {
  await s?.close();
});

/** Every run of the task's workflow, oldest first. */
async function runs(taskId: string) {
  const out = [];
  for await (const w of s.temporal.client.workflow.list({ query: `WorkflowId = "${taskId}"` })) out.push(w);
  return out.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

test('continue-as-new carries the state, the memo and the search attributes', async () => {
  const { taskId, token } = await t.spawnShell(2);
  await t.waitStatus(taskId, 'running');
  const stream = await StreamClient.open(s.apiUrl, taskId, token);
  stream.type('export LIA_MARK=kept-$((6 * 7))\r');
  await stream.waitForText('export LIA_MARK');
  await t.waitStatus(taskId, 'suspended', 30_000);
  assert.equal((await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER)).status, 200);
  await t.waitStatus(taskId, 'suspended', 30_000);
  assert.equal((await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER)).status, 200);
  stream.type('echo "mark=$LIA_MARK"\r');
  await stream.waitForText('mark=kept-42');

  const all = await waitFor('continued as new at least once', async () => {
    const r = await runs(taskId);
    return r.length >= 2 ? r : undefined;
  });
  assert.ok(all.slice(0, -1).every((r) => r.status.name === 'CONTINUED_AS_NEW'));
  const handle = s.temporal.client.workflow.getHandle(taskId);
  const latest = await handle.describe();
  assert.equal(latest.memo?.prompt, 'a shell for tests', 'the memo (prompt) is carried');
  const sa = latest.typedSearchAttributes;
  const get = (name: string) => sa.getAll().find((p) => p.key.name === name)?.value;
  assert.equal(get('LiaOwner'), OWNER);
  assert.equal(get('LiaHost'), s.config.host.id);
  assert.equal(get('LiaStatus'), 'running');
  const state = (await handle.query(stateQuery)) as TaskState;
  assert.equal(state.status, 'running');
  assert.ok(state.suspendCount >= 2, `suspendCount carried across runs: ${state.suspendCount}`);
  assert.equal(stream.duplicates, 0);
  assert.equal(stream.gaps, 0);
  await stream.close();
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await t.waitStatus(taskId, 'terminated');
});

/** Resolves when the task's row says `status`, woken by the row's own notification (not a poll). */
async function whenRow(taskId: string, status: string, timeoutMs = 30_000): Promise<void> {
  const client = new pg.Client({ connectionString: s.vars.LIA__DATABASE__URL });
  await client.connect();
  try {
    await client.query(`LISTEN ${CHANNELS.task}`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`task ${taskId} never was ${status}`)), timeoutMs);
      client.on('notification', (n) => {
        if (n.payload !== taskId) return;
        void client.query('SELECT status FROM tasks WHERE id = $1', [taskId]).then(({ rows }) => {
          if (rows[0]?.status === status) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    });
  } finally {
    await client.end();
  }
}

test('a resume that arrives while the task is suspending is honoured, continue-as-new due or not', async () => {
  const { taskId, token } = await t.spawnShell(2);
  await t.waitStatus(taskId, 'running');
  await whenRow(taskId, 'suspending');
  const r = await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.status, 'running');
  const stream = await StreamClient.open(s.apiUrl, taskId, token);
  stream.type('echo "back=$((40 + 2))"\r');
  await stream.waitForText('back=42');
  await stream.close();
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await t.waitStatus(taskId, 'terminated');
});

test('a terminate in a storm of continue-as-new ends the task and leaves nothing', async () => {
  const { taskId, token } = await t.spawnShell(2);
  await t.waitStatus(taskId, 'running');
  const stream = await StreamClient.open(s.apiUrl, taskId, token);
  // Output every 50 ms keeps it awake with an activity report every 200 ms (the shortest, for a
  // 2 s idle timeout), so with a 30-event history limit it continues as new every few seconds.
  stream.type('while :; do echo tick; sleep 0.05; done\r');
  await waitFor('two runs or more', async () => (await runs(taskId)).length >= 3, 60_000, 200);
  const pid = t.agentPid(taskId);
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await t.waitStatus(taskId, 'terminated', 30_000);
  await waitFor('the agent to be gone', () => sessionPids(pid).length === 0, 10_000);
  await stream.close();
});

test('resume and terminate cannot race into a wrong answer; resume after terminate is refused', async () => {
  const { taskId } = await t.spawnShell(2);
  await t.waitStatus(taskId, 'suspended', 30_000);
  const [resume, stop] = await Promise.all([
    s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER),
    s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER),
  ]);
  assert.equal(stop.status, 202);
  await t.waitStatus(taskId, 'terminated', 30_000);
  // The resume either won (and the task then ended) or was refused with the reason: never a
  // 200 that claims a running task that is not.
  if (resume.status === 200) assert.equal(resume.json.status, 'running');
  else assert.match(resume.json.error.message, /stopped|ended|terminat/);
  const after = await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER);
  assert.equal(after.status, 409);
  assert.match(after.json.error.message, /terminated; it cannot be resumed/);
});

test('a restore that fails keeps the task suspended, with the reason; the resume says so', async () => {
  const { taskId } = await t.spawnShell(2);
  await t.waitStatus(taskId, 'suspended', 30_000);
  // The suspended agent is gone from the host (as after a crash): the local driver cannot restore.
  process.kill(t.sidecarPid(taskId), 'SIGKILL');
  const r = await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER);
  assert.notEqual(r.status, 200, 'a failed resume never answers 200');
  assert.match(r.json.error.message, /could not be restored.*gone from this host/);
  const v = await t.view(taskId);
  assert.equal(v.status, 'suspended');
  assert.match(v.error ?? '', /could not be restored/);
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await t.waitStatus(taskId, 'terminated');
});
