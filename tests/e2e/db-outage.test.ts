/**
 * PostgreSQL stopped for longer than the first workflow's budget for it (its output pump gave
 * up after about 8 minutes of retries, and cleanup then deleted the user's VM), then started
 * again: no task fails, and the terminal output made meanwhile is all there, each line once.
 * The stack runs on a cluster of its own, which this test stops and starts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ensurePrivateCluster, type PrivateCluster } from '../../postgres-dev/cluster.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

/** Longer than the old pump's ~8 minutes of retries (50 attempts, backoff up to 10 s). */
const OUTAGE_MS = Number(process.env.LIA_TEST_DB_OUTAGE_MS ?? 510_000);
const OWNER = 'u-dbout';

let s: TestStack | undefined;
let cluster: PrivateCluster | undefined;
const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-dbout-'));
after(async () => {
  await s?.close().catch(() => {});
  await cluster?.stop();
  fs.rmSync(clusterDir, { recursive: true, force: true });
});

test(`PostgreSQL away for ${Math.round(OUTAGE_MS / 1000)} s: no task fails, no output line is lost or doubled`, async () => {
  cluster = await ensurePrivateCluster(clusterDir);
  s = await startTestStack(
    'db_outage',
    { LIA__CONTROL__MAINTENANCE_SECONDS: '5' },
    { adminDatabaseUrl: cluster.url },
  );
  const t = taskOps(s, OWNER);
  const { taskId, token } = await t.spawnShell(3600);
  await t.waitStatus(taskId, 'running');
  const stream = await StreamClient.open(s.apiUrl, taskId, token);
  // One numbered line a second, before, during and after the outage.
  stream.type('i=0; while :; do i=$((i+1)); echo "line-$i"; sleep 1; done\r');
  await stream.waitForText('line-3');

  await cluster.stop();
  const stoppedAt = Date.now();
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  cluster = await ensurePrivateCluster(clusterDir);
  const outage = Date.now() - stoppedAt;

  // The stream reconnects (the API's task bus and pool come back by themselves).
  const lines = () => terminalLines(stream.text()).filter((l) => /^line-\d+$/.test(l));
  const want = Math.floor(outage / 1000) + 10;
  await waitFor(`line-${want} after the outage`, () => lines().includes(`line-${want}`), 180_000, 500);
  const seen = lines().map((l) => Number(l.slice(5)));
  const first = seen[0]!;
  assert.deepEqual(
    seen,
    Array.from({ length: seen.length }, (_, i) => first + i),
    'every line, once, in order',
  );
  assert.equal(stream.duplicates, 0);
  const v = await t.view(taskId);
  assert.equal(v.status, 'running');
  assert.equal(v.error, null);
  await stream.close();
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
  await t.waitStatus(taskId, 'terminated', 60_000);
});
