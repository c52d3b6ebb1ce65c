/**
 * Spawn → first byte of the guest shell on the task's WebSocket, with the qemu driver: cold
 * boots against VMs started from a template, in one run, on the real Temporal dev server and
 * PostgreSQL. Then memory: 4 VMs running at once from one template against 4 booted cold —
 * RSS (what `ps` shows, counting shared pages in full), PSS (shared pages divided among their
 * sharers) and private (the VM's own) per QEMU, from /proc/<pid>/smaps_rollup.
 *
 * Run: ./lia bench bench/template-spawn.ts [count] [memoryMib]   (defaults 10, 256)
 * Each part starts its own stack: a host worker with LIA__VM__TEMPLATES=false, then true, then
 * with a pool of 2 spares (LIA__VM__TEMPLATE_POOL=2; memory is measured for the 4 tasks' VMs,
 * not the spares); the template is built (or found in the cache) by the host's self-check,
 * before any task. BENCH_ONLY=cold|template|pool runs one part.
 */
import fs from 'node:fs';
import WebSocket from 'ws';
import { startTestStack, type TestStack } from '../tests/helpers/stack.js';

const count = Number(process.argv[2] ?? 10);
const memoryMib = process.argv[3] ?? '256';
const OWNER = 'bench-user';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function spawnTask(s: TestStack, i: number) {
  const t0 = Date.now();
  const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: `bench ${i}`, runtime: 'shell' });
  if (res.status !== 201) throw new Error(JSON.stringify(res.json));
  const taskId = res.json.taskId as string;
  const token = decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));
  const ws = new WebSocket(
    `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?from=1&token=${token}`,
  );
  const first = await new Promise<number>((resolve, reject) => {
    ws.on('message', (_d, isBinary) => {
      if (isBinary) resolve(Date.now());
    });
    ws.on('error', reject);
    setTimeout(() => reject(new Error(`task ${taskId}: no output within 180 s`)), 180_000).unref();
  });
  ws.close();
  const view = (await s.api('GET', `/api/v1/tasks/${taskId}`, OWNER)).json;
  return { taskId, ms: first - t0, vmStart: String(view.vmStart ?? '') };
}

const stop = (s: TestStack, taskId: string) => s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);

function qemuPid(taskId: string): number | undefined {
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.startsWith('qemu-system') && cmd.includes(`lia-${taskId}\0`)) return Number(p);
    } catch {}
  }
  return undefined;
}

function memoryOf(pid: number) {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return {
    rss: kb('Rss') / 1024,
    pss: kb('Pss') / 1024,
    priv: (kb('Private_Clean') + kb('Private_Dirty')) / 1024,
  };
}

async function half(templates: boolean, pool = 0) {
  const label = templates ? (pool ? `pool ${pool}` : 'template') : 'cold';
  const s = await startTestStack(`bench_tpl_${label.replace(' ', '')}`, {
    LIA__VM__TEMPLATE_POOL: String(pool),
    LIA__VM__DRIVER: 'qemu',
    LIA__VM__MEMORY_MIB: memoryMib,
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    LIA__VM__TEMPLATES: String(templates),
    LIA__HOST__MAX_VMS: '100',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '100',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '100',
  });
  try {
    const samples: number[] = [];
    const starts = new Set<string>();
    const warm = await spawnTask(s, -1); // first connections, JIT, the template's memfd
    await stop(s, warm.taskId);
    for (let i = 0; i < count; i++) {
      const r = await spawnTask(s, i);
      samples.push(r.ms);
      starts.add(r.vmStart.replace(/ [0-9a-f]{16}$/, ''));
      process.stderr.write(
        `  ${templates ? 'template' : 'cold'} ${i + 1}/${count}: ${r.ms} ms (${r.vmStart})\n`,
      );
      await stop(s, r.taskId);
      await new Promise((r2) => setTimeout(r2, 1000));
    }
    // Memory: 4 VMs up at once, a little after their first byte.
    const four = [];
    for (let i = 0; i < 4; i++) four.push(await spawnTask(s, 100 + i));
    await new Promise((r) => setTimeout(r, 5000));
    const mem = four.map((t) => {
      const pid = qemuPid(t.taskId);
      return pid ? memoryOf(pid) : { rss: NaN, pss: NaN, priv: NaN };
    });
    for (const t of four) await stop(s, t.taskId);
    await new Promise((r) => setTimeout(r, 3000));
    return { samples, starts: [...starts].join(', '), mem };
  } finally {
    await s.close();
  }
}

// BENCH_ONLY=template (or cold) runs one half, for a quick look.
const only = process.env.BENCH_ONLY;
const skipped = { samples: [NaN], starts: 'not run', mem: [{ rss: NaN, pss: NaN, priv: NaN }] };
const cold = only && only !== 'cold' ? skipped : await half(false);
const tpl = only && only !== 'template' ? skipped : await half(true);
const pooled = only && only !== 'pool' ? skipped : await half(true, 2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(`\nspawn → first byte on the WebSocket, qemu (TCG), ${memoryMib} MiB guest, ${count} tasks each`);
console.log('| start | p50 | p95 | min | max | how the VMs started |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [name, r] of [
  ['cold boot', cold],
  ['from a template', tpl],
  ['a spare of a pool of 2', pooled],
] as const)
  console.log(
    `| ${name} | ${fmt(pct(r.samples, 50))} | ${fmt(pct(r.samples, 95))} | ${fmt(Math.min(...r.samples))} | ${fmt(Math.max(...r.samples))} | ${r.starts} |`,
  );
console.log(
  '\nmemory per QEMU, 4 VMs running at once (MiB, mean of 4; sum of PSS = what the 4 cost together)',
);
console.log('| start | RSS | PSS | private | PSS × 4 |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, r] of [
  ['cold boot', cold],
  ['from a template', tpl],
] as const)
  console.log(
    `| ${name} | ${mean(r.mem.map((m) => m.rss)).toFixed(0)} | ${mean(r.mem.map((m) => m.pss)).toFixed(0)} | ${mean(
      r.mem.map((m) => m.priv),
    ).toFixed(0)} | ${r.mem
      .map((m) => m.pss)
      .reduce((a, b) => a + b, 0)
      .toFixed(0)} |`,
  );
process.exit(0);
