/**
 * History events per hour of a busy task: a shell printing a line every half second, with the
 * default idle timeout, for a few minutes; the workflow's events (over all its runs) are
 * counted and scaled to an hour. The goal is ≤ 300 an hour (the first workflow wrote ~7,200:
 * a signal, three workflow-task events and a re-armed timer every 3 s).
 *   ./lia bench bench/history-events.ts [minutes]   (default 3)
 */
import { startTestStack } from '../tests/helpers/stack.js';

const minutes = Number(process.argv[2] ?? 3);
const s = await startTestStack('bench_history', { LIA__LOG__LEVEL: 'error' });
const user = 'bench';
const res = await s.api('POST', '/api/v1/tasks', user, { prompt: 'busy', runtime: 'shell' });
if (res.status !== 201) throw new Error(JSON.stringify(res.json));
const taskId: string = res.json.taskId;
const handle = s.temporal.client.workflow.getHandle(taskId);
for (let i = 0; (await s.api('GET', `/api/v1/tasks/${taskId}`, user)).json.status !== 'running'; i++) {
  if (i > 300) throw new Error('the task did not start');
  await new Promise((r) => setTimeout(r, 100));
}

/** Events of every run of the task so far. */
async function events(): Promise<number> {
  let n = 0;
  for await (const w of s.temporal.client.workflow.list({ query: `WorkflowId = "${taskId}"` }))
    n += (await s.temporal.client.workflow.getHandle(taskId, w.runId).fetchHistory()).events?.length ?? 0;
  return n;
}

const atStart = await events();
await s.api('GET', `/api/v1/tasks/${taskId}`, user);
// Busy: a line every half second, typed into the shell through the input queue.
await s.tasks.input(
  { userId: user, admin: false },
  taskId,
  Buffer.from('while :; do date; sleep 0.5; done\r'),
);
const started = Date.now();
await new Promise((r) => setTimeout(r, minutes * 60_000));
const busy = (await events()) - atStart;
const hours = (Date.now() - started) / 3_600_000;
process.stdout.write(
  `history of a busy task (default idle timeout, output every 0.5 s) over ${minutes} min\n` +
    `events    ${busy} in ${(hours * 60).toFixed(1)} min  →  ${Math.round(busy / hours)} per hour\n`,
);
await s.api('DELETE', `/api/v1/tasks/${taskId}`, user);
await new Promise((r) => setTimeout(r, 2000));
await s.close();
void handle;
