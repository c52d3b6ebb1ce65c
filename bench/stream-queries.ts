/**
 * Temporal queries per open terminal socket per minute: N WebSockets watch one busy task for a
 * while, and every QueryWorkflow call the API's Temporal client makes is counted (the first
 * API queried the workflow every 5 s and on every task notification, per socket).
 *   ./lia bench bench/stream-queries.ts [sockets] [seconds]   (default 10 and 60)
 */
import { StreamClient, startTestStack } from '../tests/helpers/stack.js';

const sockets = Number(process.argv[2] ?? 10);
const seconds = Number(process.argv[3] ?? 60);
const s = await startTestStack('bench_queries', { LIA__LOG__LEVEL: 'error' });
const user = 'bench';
const res = await s.api('POST', '/api/v1/tasks', user, {
  prompt: 'busy',
  runtime: 'shell',
  idleTimeoutSeconds: 20,
});
if (res.status !== 201) throw new Error(JSON.stringify(res.json));
const taskId: string = res.json.taskId;
const token = decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));

// Count every query the API's client sends to Temporal (the service object is shared by all handles).
// biome-ignore lint/suspicious/noExplicitAny: reaching into the service for the bench's counter
const service = (s.tasks as any).temporal.workflowService;
let queries = 0;
const query = service.queryWorkflow.bind(service);
service.queryWorkflow = (req: unknown) => {
  queries++;
  return query(req);
};

const clients = await Promise.all(
  Array.from({ length: sockets }, () => StreamClient.open(s.apiUrl, taskId, token)),
);
// Busy, with state changes on the way: output every half second, and an idle suspend/resume.
await s.tasks.input(
  { userId: user, admin: false },
  taskId,
  Buffer.from('for i in $(seq 60); do date; sleep 0.5; done\r'),
);
const started = Date.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const minutes = (Date.now() - started) / 60_000;
process.stdout.write(
  `Temporal queries from the API, ${sockets} sockets on one task for ${seconds} s\n` +
    `queries   ${queries}  →  ${(queries / sockets / minutes).toFixed(2)} per socket per minute\n`,
);
for (const c of clients) await c.close();
await s.api('DELETE', `/api/v1/tasks/${taskId}`, user);
await new Promise((r) => setTimeout(r, 2000));
await s.close();
