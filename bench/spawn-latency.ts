/**
 * POST /api/v1/tasks → first output byte on the task's WebSocket, with the local driver, on the
 * real Temporal dev server and PostgreSQL. Prints p50/p95 of the whole path and of its parts:
 *   api       POST handled (row + files inserted, workflow started)
 *   temporal  POST answered → VM boot scheduled (workflow task, placement, records: Temporal's part)
 *   host      bootVm scheduled → first byte in the browser (activity dispatch, sidecar up, agent
 *             started, its pump attached: PTY → PostgreSQL → NOTIFY → WebSocket). bootVm starts
 *             the pump, so the first byte does not wait for the workflow to see the boot end.
 * Tasks are spawned one at a time, `gap` ms apart (default 500), so each one measures a spawn on
 * a settled machine rather than behind the previous task's clean-up; `gap` 0 shows that too.
 * Run: ./lia bench bench/spawn-latency.ts [count] [gap]   (defaults 20, 500)
 */

import WebSocket from 'ws';
import { startTestStack } from '../tests/helpers/stack.js';

const count = Number(process.argv[2] ?? 20);
const gapMs = Number(process.argv[3] ?? 500);
const s = await startTestStack('bench_spawn', {
  LIA__HOST__MAX_VMS: '1000',
  LIA__QUOTA__LIVE_TASKS_PER_USER: '1000',
  LIA__QUOTA__RUNNING_TASKS_PER_USER: '1000',
});

interface Sample {
  total: number;
  api: number;
  temporal: number;
  host: number;
}

async function once(i: number): Promise<Sample> {
  const t0 = Date.now();
  const res = await s.api('POST', '/api/v1/tasks', 'bench-user', { prompt: `bench ${i}`, runtime: 'shell' });
  const tApi = Date.now();
  if (res.status !== 201) throw new Error(JSON.stringify(res.json));
  const taskId = res.json.taskId as string;
  const token = decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));
  const ws = new WebSocket(
    `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?from=1&token=${token}`,
  );
  const tFirst = await new Promise<number>((resolve, reject) => {
    ws.on('message', (_d, isBinary) => {
      if (isBinary) resolve(Date.now());
    });
    ws.on('error', reject);
    setTimeout(() => reject(new Error(`task ${taskId}: no output within 30 s`)), 30_000).unref();
  });
  ws.close();
  // The parts, from the workflow's history (server clock, same machine).
  const history = await s.temporal.client.workflow.getHandle(taskId).fetchHistory();
  const at = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const events = history.events ?? [];
  const bootScheduled = events.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'bootVm',
  );
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, 'bench-user');
  await new Promise((r) => setTimeout(r, gapMs));
  if (!bootScheduled) throw new Error(`task ${taskId}: no bootVm in its history`);
  return {
    total: tFirst - t0,
    api: tApi - t0,
    temporal: at(bootScheduled) - tApi,
    host: tFirst - at(bootScheduled),
  };
}

const pct = (xs: number[], p: number) => {
  const s2 = [...xs].sort((a, b) => a - b);
  return s2[Math.min(s2.length - 1, Math.floor((p / 100) * s2.length))]!;
};

await once(-1); // warm-up: first connections, JIT
const samples: Sample[] = [];
for (let i = 0; i < count; i++) samples.push(await once(i));
const row = (name: keyof Sample) =>
  `${name.padEnd(9)} p50 ${pct(
    samples.map((x) => x[name]),
    50,
  )
    .toFixed(1)
    .padStart(7)} ms   p95 ${pct(
    samples.map((x) => x[name]),
    95,
  )
    .toFixed(1)
    .padStart(7)} ms`;
console.log(`spawn → first output byte, local driver, ${count} tasks, ${gapMs} ms apart`);
for (const k of ['total', 'api', 'temporal', 'host'] as const) console.log(row(k));
await s.close();
process.exit(0);
