/**
 * Lia against the Temporal server a self-hosted production runs — go.temporal.io/server with
 * PostgreSQL persistence, built from the Go module proxy — instead of the CLI's dev server: a
 * task runs, suspends and resumes, the maintenance schedules exist, and the Temporal server
 * killed with -9 mid-task and started again loses nothing: the task goes on, its output whole.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SEARCH_ATTRIBUTES } from '../../common/task.js';
import { ensurePrivateCluster, type PrivateCluster } from '../../postgres-dev/cluster.js';
import { type PostgresTemporal, startTemporalOnPostgres } from '../../temporal-dev/server-postgres.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-tpg-'));
let cluster: PrivateCluster | undefined;
let temporal: PostgresTemporal | undefined;
let s: TestStack | undefined;
after(async () => {
  await s?.close().catch(() => {});
  await temporal?.stop();
  await cluster?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a task on the Temporal server with PostgreSQL persistence survives the server killed with -9', async () => {
  cluster = await ensurePrivateCluster(path.join(dir, 'pg'));
  temporal = await startTemporalOnPostgres({
    postgresUrl: cluster.url,
    dir: path.join(dir, 'temporal'),
    namespace: 'default',
    searchAttributes: Object.values(SEARCH_ATTRIBUTES),
    progress: (m) => process.stderr.write(`${m}\n`),
  });
  s = await startTestStack(
    'temporal_pg',
    { LIA__CONTROL__MAINTENANCE_SECONDS: '5' },
    { temporalAddress: temporal.address },
  );
  const t = taskOps(s, 'u-tpg');
  const { taskId, token } = await t.spawnShell(3);
  await t.waitStatus(taskId, 'running', 60_000);
  const c = await StreamClient.open(s.apiUrl, taskId, token);
  c.type('export MARK=kept-$((6*7))\r');
  await c.waitForText('export MARK');
  await t.waitStatus(taskId, 'suspended', 60_000);
  assert.equal((await s.api('POST', `/api/v1/tasks/${taskId}/resume`, 'u-tpg')).status, 200);

  // Busy, then the Temporal server dies and comes back.
  c.type('i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "line-$i"; sleep 0.05; done; echo "mark=$MARK"\r');
  await c.waitForText('line-20');
  await temporal.kill();
  await new Promise((r) => setTimeout(r, 5000));
  await temporal.restart();
  await c.waitForText('mark=kept-42', 120_000).catch(async (err) => {
    // What the workflow did, for whoever reads the failure.
    const events = (await s!.temporal.client.workflow.getHandle(taskId).fetchHistory()).events ?? [];
    throw new Error(
      `${err.message}\nhistory: ${events.map((e) => `${e.eventId} ${e.eventType}`).join(', ')}`,
    );
  });
  const lines = terminalLines(c.text()).filter((l) => /^line-\d+$/.test(l));
  assert.equal(lines.length, 400, 'every line, once');
  assert.equal(c.duplicates, 0);
  await c.close();
  assert.equal((await t.view(taskId)).status, 'running');

  // The maintenance schedules live in this cluster too.
  const schedules: string[] = [];
  for await (const sc of s.temporal.client.schedule.list()) schedules.push(sc.scheduleId);
  assert.deepEqual(schedules.sort(), ['lia-host-watchdog', 'lia-task-sweeper']);
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, 'u-tpg')).status, 202);
  await t.waitStatus(taskId, 'terminated', 60_000);
  await waitFor(
    'the workflow to close',
    async () => (await s!.temporal.client.workflow.getHandle(taskId).describe()).status.name === 'COMPLETED',
    30_000,
  );
});
