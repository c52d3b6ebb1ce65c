/**
 * A deployment's shape on one machine: every role in its own process — the API, a control
 * worker, two host workers (their own host ids and state folders) — on one Temporal dev server
 * and one PostgreSQL. Tasks spread over both hosts; with both full the next tasks wait in order
 * and start as slots free; a host killed for good fails its tasks with the reason and the queue
 * moves to the other host; the API killed and started again while terminals are attached: they
 * reconnect from their last seq and miss nothing; each role's /metrics says what happened.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { LinkSigner } from '../../tasks/links.js';
import { type TestTemporal, testDatabase, testTemporal, waitFor } from '../helpers/env.js';
import { freePort, type RoleProcess, sample, scrape, startRole, waitReady } from '../helpers/roles.js';
import { StreamClient, terminalLines } from '../helpers/stack.js';

let temporal: TestTemporal;
let db: pg.Pool;
const roles: RoleProcess[] = [];
const dirs: string[] = [];
const serviceToken = randomBytes(24).toString('hex');
const linkSecret = randomBytes(24).toString('hex');
let apiUrl = '';
const metricsPort: Record<string, number> = {};
let shared: Record<string, string>;

async function role(name: string, extra: Record<string, string> = {}, key = name): Promise<RoleProcess> {
  metricsPort[key] ??= await freePort();
  const r = startRole(name, { ...shared, LIA__METRICS__PORT: String(metricsPort[key]), ...extra });
  roles.push(r);
  await waitReady(r);
  return r;
}

async function host(id: string): Promise<RoleProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lia-${id}-`));
  dirs.push(dir);
  return role('host', { LIA__HOST__ID: id, LIA__STATE__DIR: dir }, id);
}

before(async () => {
  const dbUrl = await testDatabase('lia_test_multi_host');
  db = new pg.Pool({ connectionString: dbUrl });
  temporal = await testTemporal();
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-multi-'));
  dirs.push(state);
  const apiPort = await freePort();
  apiUrl = `http://127.0.0.1:${apiPort}`;
  shared = {
    LIA__DATABASE__URL: dbUrl,
    LIA__TEMPORAL__ADDRESS: temporal.address,
    LIA__STATE__DIR: state,
    LIA__API__SERVICE_TOKEN: serviceToken,
    LIA__API__LINK_SECRET: linkSecret,
    LIA__SERVER__PORT: String(apiPort),
    LIA__VM__DRIVER: 'local',
    LIA__HOST__MAX_VMS: '4',
    LIA__HOST__HEARTBEAT_SECONDS: '1',
    LIA__HOST__LOST_AFTER_SECONDS: '10',
    LIA__CONTROL__MAINTENANCE_SECONDS: '5',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '20',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '20',
    LIA__LOG__LEVEL: 'warn',
    LIA__API__ADMIN_USERS: 'admin-of-test',
  };
  await role('control');
  await host('h-one');
  await host('h-two');
  await role('api');
});

after(async () => {
  for (const r of roles) await r.kill('SIGKILL');
  // The local driver's sidecars outlive their workers by design: they go with the test.
  for (const d of dirs) {
    for (const pid of sidecarsIn(d)) process.kill(pid, 'SIGKILL');
    fs.rmSync(d, { recursive: true, force: true });
  }
  await db?.end();
  await temporal?.teardown();
});

function sidecarsIn(dir: string): number[] {
  return fs.readdirSync('/proc').flatMap((p) => {
    if (!/^\d+$/.test(p)) return [];
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir) ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

async function api(method: string, route: string, user: string, body?: unknown) {
  const r = await fetch(`${apiUrl}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${serviceToken}`,
      'x-lia-user': user,
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as any };
}
const spawn = async (user: string) => {
  const r = await api('POST', '/api/v1/tasks', user, {
    prompt: 'p',
    runtime: 'shell',
    idleTimeoutSeconds: 3600,
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.taskId as string;
};
const view = async (id: string) => (await api('GET', `/api/v1/tasks/${id}`, 'admin-of-test')).json;
const rowOf = async (id: string) =>
  (await db.query('SELECT status, host_id AS "hostId", error FROM tasks WHERE id = $1', [id])).rows[0];
const waitRow = (id: string, status: string, ms = 60_000) =>
  waitFor(
    `${id} to be ${status}`,
    async () => ((await rowOf(id)).status === status ? rowOf(id) : undefined),
    ms,
    100,
  );
const stop = async (id: string) => {
  const owner = (await db.query('SELECT owner FROM tasks WHERE id = $1', [id])).rows[0].owner;
  assert.equal((await api('DELETE', `/api/v1/tasks/${id}`, owner)).status, 202);
  await waitRow(id, 'terminated');
};

test('tasks spread over two hosts, queue when both are full, and move on when one is lost', async () => {
  // 8 tasks by 4 users: 4 on each host (the one with the most free slots is taken first).
  const placed: string[] = [];
  for (let i = 0; i < 8; i++) placed.push(await spawn(`u-${i % 4}`));
  for (const id of placed) await waitRow(id, 'running');
  const byHost = async () => {
    const out: Record<string, string[]> = {};
    for (const id of placed) {
      const r = await rowOf(id);
      if (r.status !== 'running') continue;
      const mine = out[r.hostId] ?? [];
      mine.push(id);
      out[r.hostId] = mine;
    }
    return out;
  };
  const spread = await byHost();
  assert.equal(spread['h-one']?.length, 4, JSON.stringify(spread));
  assert.equal(spread['h-two']?.length, 4, JSON.stringify(spread));

  // Both full: three more wait, in the order they came, and the control role's metrics say so.
  const queued = [await spawn('u-q1'), await spawn('u-q2'), await spawn('u-q3')];
  await waitFor('three queued', async () => (await view(queued[2]!)).queue?.position === 3, 30_000).catch(
    async (err) => {
      const { rows } = await db.query(
        'SELECT id, status, host_id, queued_at, error FROM tasks ORDER BY created_at',
      );
      throw new Error(`${err.message}: ${JSON.stringify(rows)}`);
    },
  );
  assert.equal((await view(queued[0]!)).queue.position, 1);
  const controlMetrics = await scrape(metricsPort.control!);
  assert.equal(sample(controlMetrics, 'lia_queue_length'), 3);
  assert.equal(sample(controlMetrics, 'lia_host_slots', { host: 'h-one', slots: 'free' }), 0);

  // A slot frees on h-one: the head of the queue takes it; the others move up.
  await stop(spread['h-one']![0]!);
  const first = await waitRow(queued[0]!, 'running');
  assert.equal(first.hostId, 'h-one');
  await waitFor('the queue to move up', async () => (await view(queued[1]!)).queue?.position === 1, 30_000);

  // h-two dies for good: its four tasks end failed with the reason…
  const hTwo = roles.find((r) => r.env.LIA__HOST__ID === 'h-two')!;
  await hTwo.kill('SIGKILL');
  for (const id of spread['h-two']!) {
    const r = await waitRow(id, 'failed', 90_000);
    assert.match(r.error, /host h-two lost: no heartbeat since/);
  }
  // …and the queue moves to h-one as its slots free.
  assert.equal((await rowOf(queued[1]!)).status, 'pending');
  await stop(spread['h-one']![1]!);
  assert.equal((await waitRow(queued[1]!, 'running')).hostId, 'h-one');

  // The host role's metrics: output stored, tasks booted, and the Temporal SDK's own.
  const hostMetrics = await scrape(metricsPort['h-one']!);
  assert.ok((sample(hostMetrics, 'lia_output_bytes_total') ?? 0) > 0);
  assert.ok(
    (sample(hostMetrics, 'lia_vm_boot_seconds_count', { driver: 'local', acceleration: 'none' }) ?? 0) >= 5,
  );
  assert.match(hostMetrics, /Temporal SDK \(worker\) metrics\n[\s\S]*temporal_/);

  for (const id of [...spread['h-one']!.slice(2), queued[0]!, queued[1]!]) await stop(id);
  await stop(queued[2]!).catch(() => {});
});

test('the API killed and started again: attached terminals reconnect from their last seq and miss nothing', async () => {
  const id = await spawn('u-watch');
  await waitRow(id, 'running');
  const links = new LinkSigner(linkSecret, 60);
  const token = await links.sign('u-watch', id);
  const watchers = await Promise.all([1, 2, 3].map(() => StreamClient.open(apiUrl, id, token)));
  watchers[0]!.type('i=0; while :; do i=$((i+1)); echo "n-$i"; sleep 0.1; done\r');
  await watchers[0]!.waitForText('n-20', 30_000);
  const apiRole = roles.find((r) => r.role === 'api')!;
  await apiRole.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 2000));
  roles.splice(roles.indexOf(apiRole), 1);
  await role('api');
  const apiMetrics = await scrape(metricsPort.api!);
  assert.ok(sample(apiMetrics, 'lia_stream_sockets') !== undefined);
  for (const w of watchers) await w.connect(apiUrl, id, token);
  for (const w of watchers) {
    await w.waitForText('n-150\r', 60_000);
    const seen = terminalLines(w.text())
      .filter((l) => /^n-\d+$/.test(l))
      .map((l) => Number(l.slice(2)));
    assert.deepEqual(
      seen,
      Array.from({ length: seen.length }, (_, i) => seen[0]! + i),
      'every line once, in order, across the API restart',
    );
    assert.equal(w.duplicates, 0);
    await w.close();
  }
  await stop(id);
});
