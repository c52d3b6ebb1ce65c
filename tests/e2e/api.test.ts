/**
 * The API's refusals that need the task service behind it (the in-process ones are in
 * tests/unit/api-refusals.test.ts): an unknown task, someone else's task, a resume the workflow
 * refuses. Each gets a 4xx that says what to fix, and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let s: TestStack;
const OWNER = 'u-owner';
const OTHER = 'u-other';
let runningTask: string;

before(async () => {
  s = await startTestStack('api');
  const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'shell', runtime: 'shell' });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  runningTask = res.json.taskId;
  await waitFor(
    'running',
    async () => (await s.api('GET', `/api/v1/tasks/${runningTask}`, OWNER)).json.status === 'running',
  );
});
after(async () => {
  if (runningTask) await s?.api('DELETE', `/api/v1/tasks/${runningTask}`, OWNER);
  await s?.close();
});

async function call(route: string, init: RequestInit = {}) {
  const res = await fetch(`${s.apiUrl}${route}`, init);
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } };
}

function assertError(r: { status: number; json: any }, status: number, message: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error?.code, 'string');
  assert.match(r.json.error.message, message);
}

describe('refusals of the task service', () => {
  test('an unknown task id', async () => {
    assertError(await s.api('GET', '/api/v1/tasks/t_aaaaaaaaaa', OWNER), 404, /no task t_aaaaaaaaaa/);
  });

  test("another user's link token", async () => {
    const theirs = await s.links.sign(OTHER, runningTask);
    const r = await call(`/api/v1/tasks/${runningTask}`, { headers: { authorization: `Bearer ${theirs}` } });
    assertError(r, 403, /belongs to another user/);
  });

  test('a service call for another user changes nothing', async () => {
    assertError(await s.api('DELETE', `/api/v1/tasks/${runningTask}`, OTHER), 403, /belongs to another user/);
    assert.equal((await s.api('GET', `/api/v1/tasks/${runningTask}`, OWNER)).json.status, 'running');
  });

  test('resume of a running task', async () => {
    assertError(
      await s.api('POST', `/api/v1/tasks/${runningTask}/resume`, OWNER),
      409,
      /already running; only a suspended task can be resumed/,
    );
  });

  test('a refused create leaves no row behind', async () => {
    const count = async () =>
      (await s.pool.query('SELECT count(*)::int AS n FROM tasks')).rows[0].n as number;
    const before = await count();
    assertError(await s.api('POST', '/api/v1/tasks', OWNER, { prompt: '  ' }), 400, /must not be empty/);
    assert.equal(await count(), before);
  });
});
