/**
 * The egress proxy's meter and model-request lifecycle, against the model-API stand-in on
 * loopback: usage counted under every encoding Claude Code advertises (gzip, deflate, br; zstd is
 * never asked for, and refused if it comes anyway), streamed and JSON, with cache tokens; a
 * compressed 401 still names its reason; a guest that aborts ends the request upstream, a stalled
 * request is ended by the idle timeout — and in both cases the task is no longer busy.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, test } from 'node:test';
import { EgressProxy } from '../../vm/egress/proxy.js';
import type { ModelUsage } from '../../vm/egress/usage-meter.js';
import { guestRequest, messagesBody, sleep, until } from '../helpers/egress.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const KEY = 'sk-ant-host-only-key-metering-0123456789';
const TASK = 't_metering22';
/** What the real CLI 2.1.331 sends (Bun's default). */
const CLI_ACCEPT = 'gzip, deflate, br, zstd';
const model = new ModelStandIn(KEY, { name: 'Bash', input: { command: 'true' } }, 'Done.', {
  caching: true,
  pings: true,
});
let proxy: EgressProxy;
const usages: { taskId: string; u: ModelUsage }[] = [];
const refusals: { taskId: string; status: number; message: string }[] = [];

before(async () => {
  await model.start();
  proxy = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [],
    limits: { modelIdleMs: 800 },
  });
  proxy.on('usage', (taskId: string, u: ModelUsage) => usages.push({ taskId, u }));
  proxy.on('model-refused', (taskId: string, status: number, message: string) =>
    refusals.push({ taskId, status, message }),
  );
});
after(async () => {
  await proxy.closeAll();
  await model.close();
});

/** The usage the proxy emits for the next answer, waited for. */
async function nextUsage(from: number): Promise<ModelUsage> {
  await until('the usage of the answer', () => usages.length > from, 3000);
  return usages[from]!.u;
}

for (const encoding of ['gzip', 'deflate', 'br', 'identity'] as const) {
  for (const stream of [true, false]) {
    test(`usage is metered under ${encoding}, ${stream ? 'server-sent events' : 'JSON'}`, async () => {
      model.options.compression = encoding;
      model.options.thinking = stream;
      const from = usages.length;
      const r = await guestRequest(proxy, TASK, {
        path: '/v1/messages?beta=true',
        headers: { 'accept-encoding': CLI_ACCEPT },
        body: messagesBody(stream),
      });
      assert.equal(r.status, 200, r.text);
      const served = model.requests.at(-1)!;
      // The model API was asked only for what the meter reads; the guest got what it asked for.
      assert.equal(served.acceptEncoding, 'gzip, deflate, br');
      assert.equal(r.headers['content-encoding'], encoding === 'identity' ? undefined : encoding);
      assert.match(r.text, stream ? /event: message_stop/ : /"type":"message"/);
      if (stream) assert.match(r.text, /event: ping/);
      const u = await nextUsage(from);
      assert.deepEqual(
        {
          input: u.inputTokens,
          output: u.outputTokens,
          cacheRead: u.cacheReadTokens,
          cacheCreation: u.cacheCreationTokens,
        },
        served.usage,
      );
      assert.equal(u.model, 'claude-sonnet-4-5');
      assert.ok(u.cacheReadTokens + u.cacheCreationTokens > 0, 'the stand-in reported cache tokens');
    });
  }
}

test('zstd is never asked of the model API; a guest that accepts only zstd gets identity', async () => {
  model.options.compression = 'auto';
  const from = usages.length;
  const r = await guestRequest(proxy, TASK, {
    path: '/v1/messages',
    headers: { 'accept-encoding': 'zstd' },
    body: messagesBody(true),
  });
  assert.equal(r.status, 200);
  assert.equal(model.requests.at(-1)!.acceptEncoding, 'identity');
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal((await nextUsage(from)).outputTokens, model.usage.output);
  // The CLI's own list: the stand-in picks gzip, the first it can make of what it was offered.
  const r2 = await guestRequest(proxy, TASK, {
    path: '/v1/messages',
    headers: { 'accept-encoding': CLI_ACCEPT },
    body: messagesBody(true),
  });
  assert.equal(r2.headers['content-encoding'], 'gzip');
});

test('an answer in an encoding the meter cannot read (zstd) is refused, never forwarded blind', async () => {
  model.options.compression = 'zstd';
  try {
    const r = await guestRequest(proxy, TASK, {
      path: '/v1/messages',
      headers: { 'accept-encoding': CLI_ACCEPT },
      body: messagesBody(true),
    });
    assert.equal(r.status, 502);
    assert.equal(r.headers['content-encoding'], undefined);
    const e = JSON.parse(r.text);
    assert.match(e.error.message, /content-encoding "zstd", which the proxy cannot meter/);
    assert.equal(r.raw.indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), -1, 'no zstd bytes reached the guest');
  } finally {
    model.options.compression = 'identity';
  }
});

test('a compressed 401 still names its reason (the host key was refused)', async () => {
  model.options.compression = 'gzip';
  model.key = 'sk-ant-some-other-key';
  try {
    const r = await guestRequest(proxy, TASK, {
      path: '/v1/messages',
      headers: { 'accept-encoding': CLI_ACCEPT },
      body: messagesBody(false),
    });
    assert.equal(r.status, 401);
    assert.equal(r.headers['content-encoding'], 'gzip');
    await until('the refusal to be reported', () => refusals.length > 0);
    assert.deepEqual(refusals.at(-1), { taskId: TASK, status: 401, message: 'invalid x-api-key' });
  } finally {
    model.key = KEY;
    model.options.compression = 'identity';
  }
});

test('429 and 529 reach the guest with retry-after; an error event mid-stream still meters the input', async () => {
  model.options.compression = 'br';
  try {
    for (const status of [429, 529]) {
      model.script.push({ kind: 'status', status, retryAfter: 7 });
      const r = await guestRequest(proxy, TASK, {
        path: '/v1/messages',
        headers: { 'accept-encoding': CLI_ACCEPT },
        body: messagesBody(true),
      });
      assert.equal(r.status, status);
      assert.equal(r.headers['retry-after'], '7');
      assert.equal(JSON.parse(r.text).error.type, status === 429 ? 'rate_limit_error' : 'overloaded_error');
    }
    model.script.push({ kind: 'error-mid-stream' });
    const from = usages.length;
    const r = await guestRequest(proxy, TASK, {
      path: '/v1/messages',
      headers: { 'accept-encoding': CLI_ACCEPT },
      body: messagesBody(true),
    });
    assert.match(r.text, /event: error\ndata: {"type":"error","error":{"type":"overloaded_error"/);
    const u = await nextUsage(from);
    assert.equal(u.inputTokens, model.requests.at(-1)!.usage!.input);
    assert.equal(u.outputTokens, 1, 'what message_start said; the stream ended before message_delta');
    assert.equal(proxy.busy(TASK), false);
  } finally {
    model.options.compression = 'identity';
  }
});

test('a guest that aborts a model request ends it upstream, and the task is no longer busy', async () => {
  model.options.compression = 'gzip';
  model.script.push({ kind: 'slow', intervalMs: 50 });
  const from = usages.length;
  let aborted = 0;
  let busyBefore = false;
  try {
    await guestRequest(proxy, TASK, {
      path: '/v1/messages',
      headers: { 'accept-encoding': CLI_ACCEPT },
      body: messagesBody(true),
      // Once message_start and a few pings are through, the guest goes away.
      onResponse: (_res, req) =>
        setTimeout(() => {
          busyBefore = proxy.busy(TASK);
          aborted = Date.now();
          req.destroy();
        }, 300),
    }).catch(() => undefined);
    assert.ok(busyBefore, 'busy while the answer streamed');
    const rec = model.requests.at(-1)!;
    const upstreamEnded = await until('the upstream request to end', () => rec.endedAt !== undefined, 2000);
    assert.equal(rec.closedEarly, true);
    await until('the task to be idle', () => !proxy.busy(TASK), 1000);
    console.log(`[abort] upstream closed ${rec.endedAt! - aborted} ms after the guest aborted`);
    assert.ok(upstreamEnded < 1000);
    // Its input was billed all the same: counted.
    assert.equal((await nextUsage(from)).inputTokens, rec.usage!.input);
  } finally {
    model.options.compression = 'identity';
  }
});

test('a stalled model request is ended by the idle timeout, upstream too; the task is no longer busy', async () => {
  model.script.push({ kind: 'stall' });
  const t0 = Date.now();
  let busyDuring = false;
  const r = guestRequest(proxy, TASK, {
    path: '/v1/messages',
    headers: { 'accept-encoding': CLI_ACCEPT },
    body: messagesBody(true),
    onResponse: () => {
      busyDuring = proxy.busy(TASK);
    },
  });
  // After the headers and message_start: a broken stream (the CLI retries it).
  await assert.rejects(r);
  const took = Date.now() - t0;
  assert.ok(busyDuring);
  assert.ok(took >= 700 && took < 2500, `ended after ${took} ms`);
  const rec = model.requests.at(-1)!;
  await until('the upstream request to end', () => rec.endedAt !== undefined, 1000);
  assert.equal(rec.closedEarly, true);
  assert.equal(proxy.busy(TASK), false);
});

test('a model API that never answers: the guest gets a 504 with the reason after the idle timeout', async () => {
  const silent = http.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const p = new EgressProxy({
    modelBaseUrl: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
    apiKey: KEY,
    allowHosts: [],
    limits: { modelIdleMs: 500 },
  });
  try {
    const t0 = Date.now();
    const r = await guestRequest(p, TASK, { path: '/v1/messages', body: messagesBody(true) });
    assert.equal(r.status, 504);
    assert.match(JSON.parse(r.text).error.message, /sent nothing for 1 s|sent nothing for 0 s/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(p.busy(TASK), false);
  } finally {
    await p.closeAll();
    silent.closeAllConnections();
    silent.close();
  }
});

test('the total timeout ends a request that keeps trickling', async () => {
  const p = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [],
    limits: { modelIdleMs: 10_000, modelMaxMs: 700 },
  });
  try {
    model.script.push({ kind: 'slow', intervalMs: 50 });
    const t0 = Date.now();
    await assert.rejects(guestRequest(p, TASK, { path: '/v1/messages', body: messagesBody(true) }));
    const took = Date.now() - t0;
    assert.ok(took >= 650 && took < 2000, `ended after ${took} ms`);
    await sleep(50);
    assert.equal(model.requests.at(-1)!.closedEarly, true);
    assert.equal(p.busy(TASK), false);
  } finally {
    await p.closeAll();
  }
});
