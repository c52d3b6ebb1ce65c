/**
 * The API's refusals that need nothing behind it: each bad request gets a 4xx with a message
 * that says what to fix, in-process (`app.request`), and never reaches the task service, the
 * output log or a workflow — any call to them fails the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { createNodeWebSocket } from '@hono/node-ws';
import { Hono } from 'hono';
import { createApp } from '../../api/app.js';
import type { AuthEnv } from '../../api/auth.js';
import { createLogger } from '../../common/logger.js';
import type { TaskBus } from '../../output/bus.js';
import type { OutputLog } from '../../output/log.js';
import type { HostService } from '../../tasks/hosts.js';
import { LinkSigner } from '../../tasks/links.js';
import type { TaskService } from '../../tasks/service.js';
import { testConfig } from '../helpers/env.js';

const OWNER = 'u-owner';
const TASK = 't_aaaaaaaaaa';
const serviceToken = randomBytes(24).toString('hex');
const config = testConfig({
  API__SERVICE_TOKEN: serviceToken,
  API__LINK_SECRET: randomBytes(24).toString('hex'),
});
const links = new LinkSigner(config.api.link_secret!, 60);

/** Anything behind the API: records and refuses every use. */
const reached: string[] = [];
function untouchable<T>(name: string, allowed: Record<string, unknown> = {}): T {
  return new Proxy({} as object, {
    get: (_t, key) => {
      if (key === 'then') return undefined;
      if (typeof key === 'string' && key in allowed) return allowed[key];
      return () => {
        reached.push(`${name}.${String(key)}`);
        throw new Error(`${name}.${String(key)} must not be reached by a refused request`);
      };
    },
  }) as T;
}

const root = new Hono<AuthEnv>();
const { upgradeWebSocket } = createNodeWebSocket({ app: root });
const app = createApp(
  {
    config,
    // The per-task door asks whether a link is still current (not revoked): that is all it may ask.
    tasks: untouchable<TaskService>('tasks', { linkCurrent: async () => true }),
    hosts: untouchable<HostService>('hosts'),
    output: untouchable<OutputLog>('output'),
    bus: untouchable<TaskBus>('bus'),
    links,
    logger: createLogger('api-refusals', 'fatal'),
    upgradeWebSocket,
  },
  root,
);
after(() => assert.deepEqual(reached, [], 'a refused request reached the service'));

const service = { authorization: `Bearer ${serviceToken}`, 'x-lia-user': OWNER };
async function call(
  method: string,
  route: string,
  init: { headers?: Record<string, string>; body?: string } = {},
) {
  const res = await app.request(route, { method, headers: init.headers, body: init.body });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } };
}
const post = (body: unknown) =>
  call('POST', '/api/v1/tasks', {
    headers: { ...service, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

function assertError(r: { status: number; json: any }, status: number, message: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(typeof r.json.error?.code, 'string');
  assert.match(r.json.error.message, message);
}

test('a malformed task id, on every per-task route', async () => {
  for (const [method, route] of [
    ['GET', '/api/v1/tasks/not-a-task'],
    ['DELETE', '/api/v1/tasks/..%2Fetc%2Fpasswd'],
    ['POST', '/api/v1/tasks/T_AAAAAAAAAA/resume'],
    ['GET', '/api/v1/tasks/t_1111111111/output'],
    ['GET', '/api/v1/tasks/t_abc/stream'],
  ] as const) {
    assertError(await call(method, route, { headers: service }), 400, /malformed task id.*t_ followed by 10/);
  }
});

test('an empty prompt', async () => {
  assertError(await post({ prompt: '   ', runtime: 'shell' }), 400, /prompt.*must not be empty/);
});

test('an oversized prompt', async () => {
  assertError(await post({ prompt: 'x'.repeat(100_001) }), 400, /prompt.*at most 100000 characters/);
});

test('a file name that could escape the working directory', async () => {
  const r = await post({ prompt: 'p', files: [{ name: '../etc/passwd', content: 'eA==' }] });
  assertError(r, 400, /files\.0\.name: file names may use letters/);
});

test('an unknown field', async () => {
  assertError(await post({ prompt: 'p', promt: 'typo' }), 400, /promt/);
});

test('bad JSON, and no body', async () => {
  assertError(await post('{"prompt": "unterminated'), 400, /not valid JSON/);
  assertError(await post(''), 400, /needs a JSON body/);
});

test('a body over the size limit', async () => {
  assertError(await post({ prompt: 'p', pad: 'x'.repeat(40 * 1024 * 1024) }), 413, /larger than \d+ MiB/);
});

test('no credentials', async () => {
  assertError(await call('GET', `/api/v1/tasks/${TASK}`), 401, /no credentials/);
});

test('a forged link token', async () => {
  const forged = await new LinkSigner('not-the-secret-at-all', 60).sign(OWNER, TASK);
  const r = await call('GET', `/api/v1/tasks/${TASK}`, { headers: { authorization: `Bearer ${forged}` } });
  assertError(r, 401, /not valid \(forged or damaged\)/);
});

test('an expired link token', async () => {
  const expired = await links.sign(OWNER, TASK, { expiresAt: Date.now() - 60_000 });
  assertError(
    await call('GET', `/api/v1/tasks/${TASK}?token=${encodeURIComponent(expired)}`),
    401,
    /expired/,
  );
});

test('a link used for a task it was not made for', async () => {
  const link = await links.sign(OWNER, 't_bbbbbbbbbb');
  for (const route of [
    `/api/v1/tasks/${TASK}`,
    `/api/v1/tasks/${TASK}/output`,
    `/api/v1/tasks/${TASK}/stream`,
  ]) {
    const r = await call('GET', route, { headers: { authorization: `Bearer ${link}` } });
    assertError(r, 403, /this link is for task t_bbbbbbbbbb/);
  }
});

test('a link cannot create tasks', async () => {
  const link = await links.sign(OWNER, TASK);
  const r = await call('POST', '/api/v1/tasks', {
    headers: { authorization: `Bearer ${link}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'p' }),
  });
  assertError(r, 403, /cannot create tasks/);
});

test('a service call that names no user, or a malformed one', async () => {
  assertError(
    await call('GET', '/api/v1/tasks', { headers: { authorization: service.authorization } }),
    400,
    /X-Lia-User/,
  );
  const r = await call('GET', '/api/v1/tasks', { headers: { ...service, 'x-lia-user': 'a b' } });
  assertError(r, 400, /X-Lia-User/);
});

test('bad stream parameters are refused before the upgrade', async () => {
  const link = await links.sign(OWNER, TASK);
  const h = { authorization: `Bearer ${link}` };
  assertError(await call('GET', `/api/v1/tasks/${TASK}/stream?from=-1`, { headers: h }), 400, /from must be/);
  assertError(
    await call('GET', `/api/v1/tasks/${TASK}/stream?sender=x`, { headers: h }),
    400,
    /sender must be/,
  );
  assertError(await call('GET', `/api/v1/tasks/${TASK}/stream?token=garbage`), 401, /not valid/);
});

test('a bad output query', async () => {
  const r = await call('GET', `/api/v1/tasks/${TASK}/output?from=0`, { headers: service });
  assertError(r, 400, /from is a seq, 1 or more/);
});

test('an unknown route', async () => {
  assertError(await call('GET', '/api/v1/nothing-here', { headers: service }), 404, /no route GET/);
});
