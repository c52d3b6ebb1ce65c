/**
 * A host worker killed (SIGKILL) and started again while its task prints: how long the task's
 * output stops — from the kill to the first new byte on the task's WebSocket, and from the new
 * worker's registration to that byte. Local driver, the real Temporal dev server and PostgreSQL.
 * Run it in two checkouts (before and after a change) to compare.
 *
 * Run: ./lia bench bench/worker-restart.ts [rounds]   (default 5)
 */

import WebSocket from 'ws';
import { startTestStack } from '../tests/helpers/stack.js';
import { taskOps } from '../tests/helpers/tasks.js';

const rounds = Number(process.argv[2] ?? 5);
const OWNER = 'bench-user';
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

const s = await startTestStack('bench_worker_restart', { LIA__LOG__LEVEL: 'error' });
const t = taskOps(s, OWNER);
const { taskId, token } = await t.spawnShell(3600);
await t.waitStatus(taskId, 'running');
const ws = new WebSocket(
  `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?from=1&token=${token}`,
);
let lastByteAt = 0;
const waiters: (() => void)[] = [];
ws.on('message', (_d, isBinary) => {
  if (!isBinary) return;
  lastByteAt = Date.now();
  for (const w of waiters.splice(0)) w();
});
await new Promise((r) => ws.once('open', r));
ws.send(JSON.stringify({ type: 'input', data: 'while :; do echo tick; sleep 0.1; done\r' }));
const nextByte = () => new Promise<number>((r) => waiters.push(() => r(Date.now())));
await nextByte();

const fromKill: number[] = [];
const fromStart: number[] = [];
for (let i = 0; i < rounds; i++) {
  await new Promise((r) => setTimeout(r, 2000));
  const killedAt = Date.now();
  await s.killHostWorker('SIGKILL');
  // Bytes already on their way before the kill do not count.
  await new Promise((r) => setTimeout(r, 300));
  await s.startHostWorker();
  const startedAt = Date.now();
  const at = lastByteAt > startedAt ? lastByteAt : await nextByte();
  fromKill.push(at - killedAt);
  fromStart.push(at - startedAt);
  console.log(
    `round ${i + 1}: output again ${at - killedAt} ms after the kill, ${at - startedAt} ms after the new worker registered`,
  );
}
console.log(`kill → output again:          p50 ${pct(fromKill, 50)} ms  p95 ${pct(fromKill, 95)} ms`);
console.log(`new worker → output again:    p50 ${pct(fromStart, 50)} ms  p95 ${pct(fromStart, 95)} ms`);
ws.close();
await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
await s.close();
process.exit(0);
