/**
 * The API's refusals: each bad input gets a 4xx with a message that says what to fix, and
 * nothing reaches a workflow or the database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { LinkSigner } from '../tasks/links.js';
import { waitFor } from './helpers/env.js';
import { startTestStack, type TestStack } from './helpers/stack.js';

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
  const json = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, json };
}

function assertError(r: { status: number; json: any }, status: number, message: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error?.code, 'string');
  assert.match(r.json.error.message, message);
}

async function taskCount(): Promise<number> {
  const { rows } = await s.pool.query('SELECT count(*)::int AS n FROM tasks');
  return rows[0].n;
}

describe('bad input is refused with a clear 4xx', () => {
  test('a malformed task id', async () => {
    assertError(
      await s.api('GET', '/api/v1/tasks/not-a-task', OWNER),
      400,
      /malformed task id.*t_ followed by 10/,
    );
  });

  test('an unknown task id', async () => {
    assertError(await s.api('GET', '/api/v1/tasks/t_aaaaaaaaaa', OWNER), 404, /no task t_aaaaaaaaaa/);
  });

  test('an empty prompt', async () => {
    const before = await taskCount();
    assertError(
      await s.api('POST', '/api/v1/tasks', OWNER, { prompt: '   ', runtime: 'shell' }),
      400,
      /prompt.*must not be empty/,
    );
    assert.equal(await taskCount(), before);
  });

  test('an oversized prompt', async () => {
    const before = await taskCount();
    const r = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'x'.repeat(100_001), runtime: 'shell' });
    assertError(r, 400, /prompt.*at most 100000 characters/);
    assert.equal(await taskCount(), before);
  });

  test('a file name that could escape the working directory', async () => {
    const r = await s.api('POST', '/api/v1/tasks', OWNER, {
      prompt: 'p',
      files: [{ name: '../etc/passwd', content: Buffer.from('x').toString('base64') }],
    });
    assertError(r, 400, /files\.0\.name: file names may use letters/);
  });

  test('an unknown field', async () => {
    assertError(await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'p', promt: 'typo' }), 400, /promt/);
  });

  /** POST /api/v1/tasks as the service for OWNER, with a body sent exactly as given. */
  const postRawTask = (body: string) =>
    call('/api/v1/tasks', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${s.serviceToken}`,
        'x-lia-user': OWNER,
        'content-type': 'application/json',
      },
      body,
    });

  test('bad JSON', async () => {
    const r = await postRawTask('{"prompt": "unterminated');
    assertError(r, 400, /not valid JSON/);
  });

  test('a body over the size limit', async () => {
    const r = await postRawTask(JSON.stringify({ prompt: 'p', pad: 'x'.repeat(40 * 1024 * 1024) }));
    assertError(r, 413, /larger than \d+ MiB/);
  });

  test('no credentials', async () => {
    assertError(await call(`/api/v1/tasks/${runningTask}`), 401, /no credentials/);
  });

  test('a forged link token', async () => {
    const forged = await new LinkSigner('not-the-secret-at-all', 60).sign(OWNER, runningTask);
    const r = await call(`/api/v1/tasks/${runningTask}`, { headers: { authorization: `Bearer ${forged}` } });
    assertError(r, 401, /not valid \(forged or damaged\)/);
  });

  test('an expired link token', async () => {
    const expired = await s.links.sign(OWNER, runningTask, Date.now() - 60_000);
    const r = await call(`/api/v1/tasks/${runningTask}?token=${encodeURIComponent(expired)}`);
    assertError(r, 401, /expired/);
  });

  test("another user's link token", async () => {
    const theirs = await s.links.sign(OTHER, runningTask);
    const r = await call(`/api/v1/tasks/${runningTask}`, { headers: { authorization: `Bearer ${theirs}` } });
    assertError(r, 403, /belongs to another user/);
  });

  test('a service call for another user', async () => {
    assertError(await s.api('DELETE', `/api/v1/tasks/${runningTask}`, OTHER), 403, /belongs to another user/);
    assert.equal((await s.api('GET', `/api/v1/tasks/${runningTask}`, OWNER)).json.status, 'running');
  });

  test('a link used for a task it was not made for', async () => {
    const link = await s.links.sign(OWNER, 't_bbbbbbbbbb');
    const r = await call(`/api/v1/tasks/${runningTask}`, { headers: { authorization: `Bearer ${link}` } });
    assertError(r, 403, /this link is for task t_bbbbbbbbbb/);
  });

  test('a service call that names no user', async () => {
    const r = await call('/api/v1/tasks', { headers: { authorization: `Bearer ${s.serviceToken}` } });
    assertError(r, 400, /X-Lia-User/);
  });

  test('resume of a running task', async () => {
    assertError(
      await s.api('POST', `/api/v1/tasks/${runningTask}/resume`, OWNER),
      409,
      /already running; only a suspended task can be resumed/,
    );
  });

  test('a WebSocket with a bad token is refused before the upgrade', async () => {
    const ws = new WebSocket(
      `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${runningTask}/stream?token=garbage`,
    );
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    assert.equal(status, 401);
  });

  test('an unknown route', async () => {
    assertError(await s.api('GET', '/api/v1/nothing-here', OWNER), 404, /no route GET/);
  });
});
