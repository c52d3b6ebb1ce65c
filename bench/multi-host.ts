/**
 * Lia as a deployment runs it — every role in its own process (API, control, host workers), the
 * API starting workflows without eager start — measured side by side in one run:
 *   spawn → first output byte with one host worker, then with two;
 *   a full host: a slot freeing (DELETE of a running task) → the next queued task's first byte.
 * Run: ./lia bench bench/multi-host.ts [spawns]   (default 10; local driver)
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { testDatabase, testTemporal } from '../tests/helpers/env.js';
import { freePort, type RoleProcess, startRole, waitReady } from '../tests/helpers/roles.js';

const spawns = Number(process.argv[2] ?? 10);
const temporal = await testTemporal();
const serviceToken = randomBytes(24).toString('hex');
const procs: RoleProcess[] = [];
const dirs: string[] = [];

async function deployment(name: string, hosts: number, maxVms: number) {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), `lia-bench-${name}-`));
  dirs.push(state);
  const port = await freePort();
  const env = {
    LIA__DATABASE__URL: await testDatabase(`lia_bench_${name}`),
    LIA__TEMPORAL__ADDRESS: temporal.address,
    LIA__STATE__DIR: state,
    LIA__API__SERVICE_TOKEN: serviceToken,
    LIA__API__LINK_SECRET: randomBytes(24).toString('hex'),
    LIA__SERVER__PORT: String(port),
    LIA__VM__DRIVER: 'local',
    LIA__HOST__MAX_VMS: String(maxVms),
    LIA__HOST__HEARTBEAT_SECONDS: '1',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '1000',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '1000',
    LIA__METRICS__PORT: '0',
    LIA__LOG__LEVEL: 'error',
  };
  const mine: RoleProcess[] = [startRole('control', env)];
  for (let i = 0; i < hosts; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lia-bench-host-`));
    dirs.push(dir);
    mine.push(startRole('host', { ...env, LIA__HOST__ID: `${name}-h${i}`, LIA__STATE__DIR: dir }));
  }
  mine.push(startRole('api', env));
  procs.push(...mine);
  for (const r of mine) await waitReady(r);
  const url = `http://127.0.0.1:${port}`;
  const call = async (method: string, route: string, body?: unknown) => {
    const r = await fetch(`${url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${serviceToken}`,
        'x-lia-user': 'bench',
        'content-type': 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await r.json()) as any;
  };
  /** Resolves at the task's first output byte on its WebSocket. */
  const firstByte = (taskId: string, link: string) =>
    new Promise<number>((resolve, reject) => {
      const token = decodeURIComponent(new URL(link).hash.slice('#token='.length));
      const ws = new WebSocket(
        `${url.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?from=1&token=${token}`,
      );
      ws.on('message', (_d, binary) => {
        if (!binary) return;
        ws.close();
        resolve(Date.now());
      });
      ws.on('error', reject);
      setTimeout(() => reject(new Error(`${taskId}: no output within 120 s`)), 120_000).unref();
    });
  const spawn = () =>
    call('POST', '/api/v1/tasks', { prompt: 'bench', runtime: 'shell', idleTimeoutSeconds: 3600 });
  // One deployment per Temporal namespace: the next one must not find this one's control worker.
  const stop = async () => {
    for (const r of mine) await r.kill('SIGTERM');
  };
  return { call, firstByte, spawn, stop };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const line = (label: string, xs: number[]) =>
  `${label.padEnd(34)} p50 ${pct(xs, 50).toFixed(0).padStart(5)} ms   p95 ${pct(xs, 95).toFixed(0).padStart(5)} ms   (n=${xs.length})`;

async function spawnLatency(name: string, hosts: number): Promise<number[]> {
  const d = await deployment(name, hosts, 1000);
  const out: number[] = [];
  for (let i = -1; i < spawns; i++) {
    const t0 = Date.now();
    const c = await d.spawn();
    const t = (await d.firstByte(c.taskId, c.url)) - t0;
    if (i >= 0) out.push(t);
    await d.call('DELETE', `/api/v1/tasks/${c.taskId}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await d.stop();
  return out;
}

const one = await spawnLatency('one', 1);
const two = await spawnLatency('two', 2);

// A full host (2 slots): a queued task starts when a slot frees.
const q = await deployment('queue', 1, 2);
const fromFree: number[] = [];
for (let i = 0; i < Math.max(3, Math.floor(spawns / 2)); i++) {
  const a = await q.spawn();
  const b = await q.spawn();
  await Promise.all([q.firstByte(a.taskId, a.url), q.firstByte(b.taskId, b.url)]);
  const waiting = await q.spawn();
  for (let n = 0; (await q.call('GET', `/api/v1/tasks/${waiting.taskId}`)).queue?.position !== 1; n++) {
    if (n > 200) throw new Error('the third task was not queued');
    await new Promise((r) => setTimeout(r, 50));
  }
  const first = q.firstByte(waiting.taskId, waiting.url);
  const freed = Date.now();
  await q.call('DELETE', `/api/v1/tasks/${a.taskId}`);
  fromFree.push((await first) - freed);
  for (const t of [b, waiting]) await q.call('DELETE', `/api/v1/tasks/${t.taskId}`);
  await new Promise((r) => setTimeout(r, 2000));
}

console.log(
  'Lia with each role in its own process (local driver; the API starts workflows without eager start)',
);
console.log(line('spawn → first byte, 1 host worker', one));
console.log(line('spawn → first byte, 2 host workers', two));
console.log(line('slot freed → queued task first byte', fromFree));

for (const r of procs) await r.kill('SIGKILL');
for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
await temporal.teardown();
process.exit(0);
