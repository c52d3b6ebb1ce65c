/**
 * A user's limit of running tasks: a spawn past it, a resume past it, and input that would
 * resume a task past it are each refused with the reason; a suspended task does not count.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';

let s: TestStack;
const OWNER = 'u-quota';

before(async () => {
  s = await startTestStack('quota', { LIA__QUOTA__RUNNING_TASKS_PER_USER: '1' });
});
after(async () => {
  await s?.close();
});

const spawn = (idleTimeoutSeconds: number) =>
  s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'p', runtime: 'shell', idleTimeoutSeconds });
const settle = (id: string, want: string) =>
  waitFor(
    `task ${id} to be ${want}`,
    async () => (await s.api('GET', `/api/v1/tasks/${id}`, OWNER)).json.status === want,
    30_000,
    100,
  );

test('running tasks per user: spawn, resume and typing are refused past the limit', async () => {
  const a = await spawn(2);
  assert.equal(a.status, 201, JSON.stringify(a.json));
  await settle(a.json.taskId, 'running');

  const refused = await spawn(600);
  assert.equal(refused.status, 429);
  assert.match(
    refused.json.error.message,
    /already have 1 running task \(the limit\) and cannot start another/,
  );

  // Suspended by its idle timer, the first no longer counts.
  await settle(a.json.taskId, 'suspended');
  const b = await spawn(600);
  assert.equal(b.status, 201, JSON.stringify(b.json));
  await settle(b.json.taskId, 'running');

  const resume = await s.api('POST', `/api/v1/tasks/${a.json.taskId}/resume`, OWNER);
  assert.equal(resume.status, 429);
  assert.match(resume.json.error.message, /cannot resume this one; stop one/);

  // Typing into it would resume it: refused and acknowledged, and nothing is kept for later.
  const token = decodeURIComponent(new URL(a.json.url).hash.slice('#token='.length));
  const stream = await StreamClient.open(s.apiUrl, a.json.taskId, token, 0, `quota-${Date.now()}`);
  stream.type('echo typed\r', 1);
  await waitFor('the refusal', () =>
    stream.errors.some((e) => /cannot resume this one for your input/.test(e)),
  );
  await waitFor('the ack', () => stream.acks.includes(1));
  const queued = await s.pool.query('SELECT count(*)::int AS n FROM task_input WHERE task_id = $1', [
    a.json.taskId,
  ]);
  assert.equal(queued.rows[0].n, 0);
  await stream.close();

  // With the other one stopped, it resumes.
  await s.api('DELETE', `/api/v1/tasks/${b.json.taskId}`, OWNER);
  await settle(b.json.taskId, 'terminated');
  const again = await s.api('POST', `/api/v1/tasks/${a.json.taskId}/resume`, OWNER);
  assert.equal(again.status, 200, JSON.stringify(again.json));
  await settle(a.json.taskId, 'running');
  await s.api('DELETE', `/api/v1/tasks/${a.json.taskId}`, OWNER);
  await settle(a.json.taskId, 'terminated');
});
