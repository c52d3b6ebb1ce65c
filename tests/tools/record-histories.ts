/**
 * Records workflow histories from real runs into tests/histories/, for the replay test.
 * Run after a deliberate change to the workflow's shape (and keep the old files: tasks
 * started by the old code must still replay).
 *   ./lia bench tests/tools/record-histories.ts [name…]   (names: only those; default: all)
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pullRequestAfterTurnSignal } from '../../workflows/definitions.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack } from '../helpers/stack.js';
import { forgeEnv, startForgeStandin } from '../standins/forge/forge-standin.js';

const FORGE_TOKEN = 'ghs_RecordHistoriesHostOnly0123456789';

const out = path.resolve(import.meta.dirname, '..', 'histories');
fs.mkdirSync(out, { recursive: true });
const only = process.argv.slice(2);
const wants = (name: string) => !only.length || only.includes(name);
let s = await startTestStack('record', { LIA__LOG__LEVEL: 'error' });
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
/** The closed workflow's runs (oldest first), once the last one has closed. */
async function closedRuns(taskId: string): Promise<string[]> {
  const handle = s.temporal.client.workflow.getHandle(taskId);
  for (let i = 0; (await handle.describe()).status.name === 'RUNNING'; i++) {
    if (i > 600) throw new Error(`${taskId} did not close`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const runs: { runId: string; start: number }[] = [];
  for await (const w of s.temporal.client.workflow.list({ query: `WorkflowId = "${taskId}"` }))
    runs.push({ runId: w.runId, start: w.startTime.getTime() });
  return runs.sort((a, b) => a.start - b.start).map((r) => r.runId);
}

/** Saves the task's history (each run, when it continued as new) once its workflow has closed. */
async function save(name: string, taskId: string) {
  const runs = await closedRuns(taskId);
  for (const [i, runId] of runs.entries()) {
    // The CLI writes the canonical proto JSON that the replayer reads back.
    const json = execFileSync(process.env.LIA_TEST_TEMPORAL_CLI ?? 'temporal', [
      'workflow',
      'show',
      '--workflow-id',
      taskId,
      '--run-id',
      runId,
      '--output',
      'json',
      '--address',
      process.env.LIA_TEST_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    ]).toString();
    // Dated, so histories of older workflow code stay in the guard next to the new ones.
    const suffix = runs.length > 1 ? `-run${i + 1}` : '';
    const file = `${name}${suffix}-${new Date().toISOString().slice(0, 10)}.json`;
    fs.writeFileSync(path.join(out, file), json);
    console.log(`recorded ${file} (${JSON.parse(json).events?.length} events)`);
  }
}

// run → terminate
if (wants('run-terminate')) {
  const t = await spawn(600);
  await until(t.taskId, 'running');
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('run-terminate', t.taskId);
}
// run → idle suspend → resume → suspend → terminate
if (wants('suspend-resume-terminate')) {
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
if (wants('agent-exit')) {
  const t = await spawn(600);
  await until(t.taskId, 'running');
  const c = await StreamClient.open(s.apiUrl, t.taskId, t.token);
  c.type('exit 0\r');
  await save('agent-exit', t.taskId);
  await c.close();
}
// claude without a key: failed with the reason
if (wants('claude-no-key-failed')) {
  const t = await spawn(600, 'claude');
  await save('claude-no-key-failed', t.taskId);
}
// a resume the workflow refuses (the task runs), then a stop
if (wants('rejected-update')) {
  const t = await spawn(600);
  await until(t.taskId, 'running');
  await s.api('POST', `/api/v1/tasks/${t.taskId}/resume`, user);
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('rejected-update', t.taskId);
}
// stopped before it has started
if (wants('terminate-while-starting')) {
  const t = await spawn(600);
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('terminate-while-starting', t.taskId);
}
// a restore that fails: the task stays suspended, the resume fails; then a stop
if (wants('restore-failed')) {
  const t = await spawn(2);
  await until(t.taskId, 'suspended');
  const vm = path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', t.taskId);
  process.kill(Number(fs.readFileSync(path.join(vm, 'sidecar.pid'), 'utf8')), 'SIGKILL');
  await s.api('POST', `/api/v1/tasks/${t.taskId}/resume`, user);
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('restore-failed', t.taskId);
}
await s.close();

// continue-as-new, forced by a small history limit: each run is kept
if (wants('continue-as-new')) {
  s = await startTestStack('record_can', {
    LIA__LOG__LEVEL: 'error',
    LIA__TEMPORAL__MAX_HISTORY_EVENTS: '40',
  });
  const t = await spawn(2);
  await until(t.taskId, 'suspended');
  await s.api('POST', `/api/v1/tasks/${t.taskId}/resume`, user);
  await until(t.taskId, 'suspended');
  await s.api('POST', `/api/v1/tasks/${t.taskId}/resume`, user);
  await s.api('DELETE', `/api/v1/tasks/${t.taskId}`, user);
  await save('continue-as-new', t.taskId);
  await s.close();
}
// the coding loop: a pull request asked for, then one after a (signalled) turn; then a stop
if (wants('pull-request')) {
  const forge = await startForgeStandin({ [FORGE_TOKEN]: { repos: '*', write: true, login: 'lia-app' } });
  forge.createRepo('acme', 'widgets', { 'README.md': '# widgets\n' });
  // A VM: the local driver has no egress, so its git cannot reach the forge.
  s = await startTestStack('record_pr', {
    LIA__LOG__LEVEL: 'error',
    LIA__VM__DRIVER: 'qemu',
    ...forgeEnv(forge, FORGE_TOKEN, 'acme/widgets'),
  });
  const r = await s.api('POST', '/api/v1/tasks', user, {
    prompt: 'recorded',
    runtime: 'shell',
    repo: 'acme/widgets',
    idleTimeoutSeconds: 600,
  });
  if (r.status !== 201) throw new Error(JSON.stringify(r.json));
  const taskId: string = r.json.taskId;
  await waitFor(`${taskId} running`, async () => (await status(taskId)) === 'running', 600_000, 250);
  const c = await StreamClient.open(s.apiUrl, taskId, decodeURIComponent(new URL(r.json.url).hash.slice(7)));
  await c.waitForText('checked out on', 180_000);
  c.type('echo change >> README.md; echo changed=$((1+1))\r');
  await c.waitForText('changed=2', 60_000);
  await c.close();
  const pr = await s.api('POST', `/api/v1/tasks/${taskId}/pull-request`, user);
  if (pr.status !== 200) throw new Error(JSON.stringify(pr.json));
  await s.temporal.client.workflow.getHandle(taskId).signal(pullRequestAfterTurnSignal, { n: 1 });
  await waitFor(
    'the pull request after the turn',
    async () => (await s.api('GET', `/api/v1/tasks/${taskId}`, user)).json.pullRequestEvents === 2,
    60_000,
    100,
  );
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, user);
  await save('pull-request', taskId);
  await s.close();
  await forge.close();
}
process.exit(0);
