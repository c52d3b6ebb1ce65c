/**
 * Records workflow histories from real runs into tests/histories/, for the replay test.
 * Run after a deliberate change to the workflow's shape (and keep the old files: tasks
 * started by the old code must still replay).
 *   node --import tsx tests/tools/record-histories.ts
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack } from '../helpers/stack.js';

const out = path.resolve(import.meta.dirname, '..', 'histories');
fs.mkdirSync(out, { recursive: true });
const s = await startTestStack('record', { LIA__LOG__LEVEL: 'error' });
const user = 'recorder';

async function spawn(idleTimeoutSeconds: number, runtime = 'shell') {
  const r = await s.api('POST', '/api/v1/tasks', user, { prompt: 'recorded', runtime, idleTimeoutSeconds });
  if (r.status !== 201) throw new Error(JSON.stringify(r.json));
  return {
    taskId: r.json.taskId as string,
    token: decodeURIComponent(new URL(r.json.url).hash.slice('#token='.length)),
  };
}
const status = async (id: string) => (await s.api('GET', `/api/v1/tasks/${id}`, user)).json.status as string;
const until = (id: string, st: string) =>
  waitFor(`${id} ${st}`, async () => (await status(id)) === st, 60_000, 100);
async function save(name: string, taskId: string) {
  await until(taskId, (await status(taskId)) === 'failed' ? 'failed' : 'terminated').catch(() => {});
  // The CLI writes the canonical proto JSON that the replayer reads back.
  const json = execFileSync(process.env.LIA_TEST_TEMPORAL_CLI ?? 'temporal', [
    'workflow',
    'show',
    '--workflow-id',
    taskId,
    '--output',
    'json',
    '--address',
    process.env.LIA_TEST_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
  ]).toString();
  // Dated, so histories of older workflow code stay in the guard next to the new ones.
  const file = `${name}-${new Date().toISOString().slice(0, 10)}.json`;
  fs.writeFileSync(path.join(out, file), json);
  console.log(`recorded ${file} (${JSON.parse(json).events?.length} events)`);
}

// run → terminate
{
  const t = await spawn(600);
  await until(t.taskId, 'running');
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('run-terminate', t.taskId);
}
// run → idle suspend → resume → suspend → terminate
{
  const t = await spawn(2);
  await until(t.taskId, 'suspended');
  await s.api('POST', `/api/v1/tasks/${t.taskId}/resume`, user);
  const c = await StreamClient.open(s.apiUrl, t.taskId, t.token);
  c.type('echo recorded\r');
  await c.waitForText('recorded');
  await c.close();
  await until(t.taskId, 'suspended');
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('suspend-resume-terminate', t.taskId);
}
// the agent exits by itself
{
  const t = await spawn(600);
  await until(t.taskId, 'running');
  const c = await StreamClient.open(s.apiUrl, t.taskId, t.token);
  c.type('exit 0\r');
  await save('agent-exit', t.taskId);
  await c.close();
}
// claude without a key: failed with the reason
{
  const t = await spawn(600, 'claude');
  await save('claude-no-key-failed', t.taskId);
}
await s.close();
process.exit(0);
