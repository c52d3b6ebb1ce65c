/**
 * What an operator does in the Temporal UI or CLI, and what Lia does about it: Temporal's own
 * terminate (which runs no workflow code) of a running and of a suspended task — the sweeper
 * (a Temporal Schedule) ends the row within a minute with the reason, the owner's quota and the
 * host's slot are free again, and the host's reconciler removes the VMs. A host worker pointed
 * at the wrong namespace deletes nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { msToTs } from '@temporalio/common';
import { isAlive } from '../../system/procs.js';
import { repoRoot, waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;
const OWNER = 'u-operator';
let t: ReturnType<typeof taskOps>;

before(async () => {
  s = await startTestStack('operator', {
    LIA__CONTROL__MAINTENANCE_SECONDS: '5',
    LIA__HOST__RECONCILE_SECONDS: '2',
    LIA__HOST__MAX_VMS: '2',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '2',
    LIA__OUTPUT__ENDED_RETENTION_HOURS: '0.002', // 7.2 s
  });
  t = taskOps(s, OWNER);
});
after(async () => {
  await s?.close();
});

test("Temporal's terminate of a running and a suspended task: rows end within a minute, quota and slots come back", async () => {
  const running = await t.spawnShell(3600);
  const suspended = await t.spawnShell(2);
  await t.waitStatus(running.taskId, 'running');
  await t.waitStatus(suspended.taskId, 'suspended', 30_000);
  const sidecars = [t.sidecarPid(running.taskId), t.sidecarPid(suspended.taskId)];
  // At the quota: a third task is refused.
  assert.equal((await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'p', runtime: 'shell' })).status, 429);

  for (const id of [running.taskId, suspended.taskId])
    await s.temporal.client.workflow.getHandle(id).terminate('an operator in the Temporal UI');
  const terminatedAt = Date.now();
  for (const id of [running.taskId, suspended.taskId]) {
    const v = await t.waitStatus(id, 'terminated', 60_000);
    assert.match(v.error ?? '', /terminated in Temporal \(reason: an operator in the Temporal UI\)/);
  }
  assert.ok(Date.now() - terminatedAt < 60_000);
  // The reconciler, on the database's word, removes their VMs.
  for (const id of [running.taskId, suspended.taskId])
    await waitFor(`${id}'s VM to be removed`, () => !fs.existsSync(t.vmDir(id)), 20_000);
  for (const pid of sidecars) assert.equal(isAlive(pid), false);
  // The quota and the host's two slots are free: two new tasks run.
  const a = await t.spawnShell(3600);
  const b = await t.spawnShell(3600);
  await t.waitStatus(a.taskId, 'running');
  await t.waitStatus(b.taskId, 'running');
  for (const id of [a.taskId, b.taskId]) await s.api('DELETE', `/api/v1/tasks/${id}`, OWNER);
  for (const id of [a.taskId, b.taskId]) await t.waitStatus(id, 'terminated');
  // Ended tasks' output goes after its retention (7.2 s here), deleted by the sweeper.
  const ended = [running.taskId, suspended.taskId, a.taskId, b.taskId];
  await waitFor(
    "the ended tasks' output to be deleted",
    async () =>
      (await s.pool.query('SELECT count(*)::int AS n FROM output_chunks WHERE task_id = ANY($1)', [ended]))
        .rows[0].n === 0,
    60_000,
    500,
  );
});

test('a host worker pointed at the wrong namespace deletes nothing', async () => {
  const { taskId, token } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  const sidecar = t.sidecarPid(taskId);
  // A namespace that exists, but where Lia's workflows are not: every task looks "not found" there.
  await s.temporal.client.workflowService
    .registerNamespace({ namespace: 'lia-elsewhere', workflowExecutionRetentionPeriod: msToTs('1 day') })
    .catch((err: Error) => {
      if (!/already/i.test(err.message)) throw err;
    });
  await s.killHostWorker('SIGKILL');
  s.vars.LIA__TEMPORAL__NAMESPACE = 'lia-elsewhere';
  try {
    await s.startHostWorker();
    // Several reconcile passes (every 2 s here).
    await new Promise((r) => setTimeout(r, 8000));
    assert.ok(isAlive(sidecar), "the task's VM is still there");
    assert.ok(fs.existsSync(t.vmDir(taskId)));
  } finally {
    await s.killHostWorker('SIGKILL');
    delete s.vars.LIA__TEMPORAL__NAMESPACE;
    await s.startHostWorker();
  }
  const stream = await StreamClient.open(s.apiUrl, taskId, token);
  stream.type('echo "fine=$((40 + 2))"\r');
  // The pump comes back once its last attempt's heartbeat has timed out (30 s) and it is retried.
  await stream.waitForText('fine=42', 120_000);
  await stream.close();
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
  await t.waitStatus(taskId, 'terminated');
});

test('replay-check replays the open tasks of a cluster against this checkout before a deploy', async () => {
  const { taskId } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  // Not spawnSync: this process runs the API and the control worker, which must go on meanwhile.
  const r = await promisify(execFile)(path.join(repoRoot, 'lia'), ['replay-check'], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LIA__TEMPORAL__ADDRESS: s.temporal.address,
      LIA__STATE__DIR: s.stateDir,
    },
  });
  const n = Number(/all (\d+) open tasks replay/.exec(r.stderr)?.[1]);
  assert.ok(n >= 1, r.stderr);
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
  await t.waitStatus(taskId, 'terminated');
});
