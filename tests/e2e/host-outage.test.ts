/**
 * Hosts come and go. A host worker that is away for longer than the first workflow's
 * 2-minute bound, but within the grace period, finds its tasks and VMs as it left them (a
 * deploy or a reboot destroys nothing); a host gone for good is declared lost by the watchdog
 * (a Temporal Schedule), and its tasks, running and suspended, end `failed` with the reason.
 * An admin can drain a host: no new placements, its tasks go on.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { isAlive } from '../../system/procs.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

const OWNER = 'u-outage';
/** Longer than the 2 minutes after which the first workflow gave up on a host. */
const AWAY_MS = Number(process.env.LIA_TEST_HOST_AWAY_MS ?? 130_000);

describe('a host worker away for longer than 2 minutes, within the grace period', () => {
  let s: TestStack;
  after(async () => s?.close());

  test('its running and suspended tasks go on, and no VM is destroyed', async () => {
    s = await startTestStack('host_away', {
      LIA__HOST__LOST_AFTER_SECONDS: String(Math.ceil(AWAY_MS / 1000) + 120),
      LIA__CONTROL__MAINTENANCE_SECONDS: '5',
      LIA__QUOTA__LIVE_TASKS_PER_USER: '5',
    });
    const t = taskOps(s, OWNER);
    const running = await t.spawnShell(3600);
    const suspended = await t.spawnShell(2);
    await t.waitStatus(running.taskId, 'running');
    await t.waitStatus(suspended.taskId, 'suspended', 30_000);
    const pids = [t.sidecarPid(running.taskId), t.sidecarPid(suspended.taskId)];

    await s.killHostWorker('SIGKILL');
    await new Promise((r) => setTimeout(r, AWAY_MS));
    assert.equal((await t.view(running.taskId)).status, 'running', 'still running while its host is away');
    assert.equal((await t.view(suspended.taskId)).status, 'suspended');
    const { rows } = await s.pool.query('SELECT state FROM hosts WHERE id = $1', [s.config.host.id]);
    assert.equal(rows[0].state, 'active', 'not declared lost within the grace period');
    await s.startHostWorker();

    for (const pid of pids) assert.ok(isAlive(pid), `sidecar ${pid} survived`);
    const stream = await StreamClient.open(s.apiUrl, running.taskId, running.token);
    stream.type('echo "alive=$((40 + 2))"\r');
    await stream.waitForText('alive=42');
    await stream.close();
    const r = await s.api('POST', `/api/v1/tasks/${suspended.taskId}/resume`, OWNER);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    for (const id of [running.taskId, suspended.taskId]) {
      assert.equal((await s.api('DELETE', `/api/v1/tasks/${id}`, OWNER)).status, 202);
      await t.waitStatus(id, 'terminated');
    }
  });
});

describe('a host gone for good', () => {
  let s: TestStack;
  after(async () => s?.close());

  test('is declared lost after the grace period, and its tasks end failed with the reason', async () => {
    const graceS = 10;
    s = await startTestStack('host_lost', {
      LIA__HOST__LOST_AFTER_SECONDS: String(graceS),
      LIA__CONTROL__MAINTENANCE_SECONDS: '5',
      LIA__QUOTA__LIVE_TASKS_PER_USER: '5',
    });
    const t = taskOps(s, OWNER);
    const running = await t.spawnShell(3600);
    const suspended = await t.spawnShell(2);
    await t.waitStatus(running.taskId, 'running');
    await t.waitStatus(suspended.taskId, 'suspended', 30_000);
    await s.killHostWorker('SIGKILL');
    const killedAt = Date.now();
    for (const id of [running.taskId, suspended.taskId]) {
      const v = await t.waitStatus(id, 'failed', (graceS + 60) * 1000);
      assert.match(v.error ?? '', new RegExp(`host ${s.config.host.id} lost: no heartbeat since`));
    }
    assert.ok(Date.now() - killedAt < (graceS + 60) * 1000);
    const { rows } = await s.pool.query('SELECT state, state_reason FROM hosts WHERE id = $1', [
      s.config.host.id,
    ]);
    assert.equal(rows[0].state, 'lost');
    // A new task finds no host, and says so (it is not placed on the lost one).
    const n = await t.spawnShell(600);
    const v = await t.waitStatus(n.taskId, 'failed', 30_000);
    assert.match(v.error ?? '', /no host is taking tasks/);
    // The host comes back: it is active again, and its reconciler removes the ended tasks' VMs.
    await s.startHostWorker();
    await waitFor(
      'the host to be active again',
      async () =>
        (await s.pool.query('SELECT state FROM hosts WHERE id = $1', [s.config.host.id])).rows[0].state ===
        'active',
      20_000,
    );
  });
});

describe('an admin drains a host', () => {
  let s: TestStack;
  after(async () => s?.close());

  test('no new task is placed on it (it waits in the queue); its running task goes on; activated, it takes tasks again', async () => {
    s = await startTestStack('host_drain', {
      LIA__API__ADMIN_USERS: 'u-admin',
      LIA__QUOTA__LIVE_TASKS_PER_USER: '5',
    });
    const t = taskOps(s, OWNER);
    const before = await t.spawnShell(3600);
    await t.waitStatus(before.taskId, 'running');
    assert.equal((await s.api('POST', `/api/v1/hosts/${s.config.host.id}/drain`, OWNER)).status, 403);
    assert.equal((await s.api('POST', `/api/v1/hosts/${s.config.host.id}/drain`, 'u-admin')).status, 200);
    const hosts = await s.api('GET', '/api/v1/hosts', 'u-admin');
    assert.equal(hosts.json.hosts[0].state, 'draining');
    assert.equal(hosts.json.hosts[0].slots.used, 1);
    const waiting = await t.spawnShell(600);
    await waitFor(
      'the new task to be queued',
      async () => (await t.view(waiting.taskId)).queue?.position === 1,
      30_000,
    );
    const stream = await StreamClient.open(s.apiUrl, before.taskId, before.token);
    stream.type('echo "still=$((40 + 2))"\r');
    await stream.waitForText('still=42');
    await stream.close();
    assert.equal((await t.view(waiting.taskId)).status, 'pending', 'nothing placed on a draining host');
    assert.equal((await s.api('POST', `/api/v1/hosts/${s.config.host.id}/activate`, 'u-admin')).status, 200);
    // Activated: the waiting task is woken and starts there.
    await t.waitStatus(waiting.taskId, 'running', 30_000);
    for (const id of [before.taskId, waiting.taskId]) await t.stop(id);
  });
});
