/**
 * A model request from a real VM (qemu) that stalls, and one the guest aborts: each ends upstream
 * (the model API stops streaming, and billing), and the task — kept awake while the request was
 * in flight — is suspended by its idle timer afterwards. Before the proxy had timeouts and passed
 * on aborts, such a task stayed "busy" for ever and was never suspended.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const OWNER = 'u-egress-vm';
const API_KEY = `sk-ant-lia-test-${randomBytes(12).toString('hex')}`;
const model = new ModelStandIn(API_KEY, { name: 'Bash', input: {} });
/** The proxy ends a model request after this long without a byte. */
const REQUEST_IDLE_S = 12;
/** The task's own idle timeout: shorter, so a task kept awake past it was kept awake by the request. */
const TASK_IDLE_S = 5;
let s: TestStack;
let t: ReturnType<typeof taskOps>;

before(async () => {
  await model.start();
  s = await startTestStack('e2e_egress_vm', {
    LIA__VM__DRIVER: 'qemu',
    LIA__VM__MEMORY_MIB: '256',
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    LIA__CLAUDE__API_KEY: API_KEY,
    LIA__CLAUDE__BASE_URL: model.url,
    LIA__CLAUDE__REQUEST_IDLE_SECONDS: String(REQUEST_IDLE_S),
  });
  t = taskOps(s, OWNER);
});
after(async () => {
  await s?.close();
  await model.close();
});

const CURL =
  `curl -sN -X POST -H 'content-type: application/json' ` +
  `-d '{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}' ` +
  '"$ANTHROPIC_BASE_URL/v1/messages"';

test('a stalled model request keeps the task awake until the proxy ends it; then the task suspends', async () => {
  const { taskId, token } = await t.spawnShell(TASK_IDLE_S);
  await t.waitStatus(taskId, 'running', 300_000);
  const c = await StreamClient.open(s.apiUrl, taskId, token);
  await c.waitForText('$ ', 60_000);
  model.script.push({ kind: 'stall' });
  const before = model.requests.length;
  c.type(`${CURL}; echo; echo stalled-curl-ended=$?\r`);
  await waitFor('the request at the model API', () => model.requests.length > before, 60_000);
  const rec = model.requests.at(-1)!;
  const started = Date.now();
  await c.close();

  // Past the task's idle timeout, the request in flight keeps it running.
  await new Promise((r) => setTimeout(r, (TASK_IDLE_S + 3) * 1000));
  assert.equal(await t.statusOf(taskId), 'running', 'a task waiting for the model is not suspended');
  assert.equal(rec.endedAt, undefined, 'the request is still open');

  // The proxy's idle timeout ends it upstream, then the task's idle timer suspends it.
  await waitFor('the proxy to end the request', () => rec.endedAt !== undefined, 30_000);
  const endedAfter = (rec.endedAt! - started) / 1000;
  assert.ok(
    endedAfter >= REQUEST_IDLE_S - 1 && endedAfter < REQUEST_IDLE_S + 5,
    `ended after ${endedAfter} s`,
  );
  assert.equal(rec.closedEarly, true);
  await t.waitStatus(taskId, 'suspended', 60_000);
  const suspendedAfter = (Date.now() - rec.endedAt!) / 1000;
  console.log(
    `[stall] upstream ended ${endedAfter.toFixed(1)} s after the request; task suspended ${suspendedAfter.toFixed(1)} s later`,
  );
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
  await t.waitStatus(taskId, 'terminated', 60_000);
});

test('a model request the guest aborts ends upstream at once; then the task suspends', async () => {
  const { taskId, token } = await t.spawnShell(TASK_IDLE_S);
  await t.waitStatus(taskId, 'running', 300_000);
  const c = await StreamClient.open(s.apiUrl, taskId, token);
  await c.waitForText('$ ', 60_000);
  // An endless stream (a ping every 200 ms): only the guest's abort can end it.
  model.script.push({ kind: 'slow', intervalMs: 200 });
  const before = model.requests.length;
  c.type(`timeout 4 ${CURL} > /dev/null; echo aborted-curl=$?\r`);
  await c.waitForText(/aborted-curl=124/, 90_000);
  const abortedAt = Date.now();
  assert.ok(model.requests.length > before);
  const rec = model.requests.at(-1)!;
  await waitFor('the upstream request to end', () => rec.endedAt !== undefined, 5_000);
  assert.equal(rec.closedEarly, true);
  console.log(
    `[abort] upstream ended within ${((rec.endedAt! - abortedAt) / 1000).toFixed(2)} s of the abort showing`,
  );
  await c.close();
  await t.waitStatus(taskId, 'suspended', 60_000);
  await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
  await t.waitStatus(taskId, 'terminated', 60_000);
});
