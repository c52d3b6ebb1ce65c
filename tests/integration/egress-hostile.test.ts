/**
 * A hostile guest against the real egress proxy (host side, on loopback, with a model-API
 * stand-in and a plain TCP/HTTP server as the one allowed host): malformed CONNECT targets and
 * absolute URLs, the model API's other routes with the host's key, a connection flood, an
 * exhausted budget. Lia — this process — stays up, and its memory stays bounded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, test } from 'node:test';
import { type BudgetAnswer, EgressProxy } from '../../vm/egress/proxy.js';
import {
  guestConnection,
  guestRequest,
  messagesBody,
  rawExchange,
  sleep,
  statusLine,
  until,
} from '../helpers/egress.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const KEY = 'sk-ant-host-only-key-hostile-0123456789';
const TASK = 't_hostile222';
const model = new ModelStandIn(KEY, { name: 'Bash', input: { command: 'true' } });
/** The one allowed host: answers plain HTTP, and holds tunnelled connections open. */
let allowedHost: http.Server;
let allowedPort = 0;
const held = new Set<net.Socket>();
let proxy: EgressProxy;
let listenerPort = 0;
let budget: BudgetAnswer = { ok: true };
const budgetRefusals: string[] = [];
const crashes: Error[] = [];
const onCrash = (err: Error) => crashes.push(err);

before(async () => {
  process.on('uncaughtException', onCrash);
  await model.start();
  allowedHost = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`allowed host saw ${req.method} ${req.url}`);
  });
  allowedHost.on('connection', (s) => {
    held.add(s);
    s.on('close', () => held.delete(s));
  });
  await new Promise<void>((r) => allowedHost.listen(0, '127.0.0.1', r));
  allowedPort = (allowedHost.address() as net.AddressInfo).port;
  proxy = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    // The reproduction: any entry at all made `CONNECT allowed:abc` end the process.
    allowHosts: ['registry.npmjs.org', `127.0.0.1:${allowedPort}`],
    budget: { check: async () => budget },
  });
  proxy.on('budget-refused', (_id: string, message: string) => budgetRefusals.push(message));
  listenerPort = await proxy.open(TASK);
});

after(async () => {
  process.off('uncaughtException', onCrash);
  await proxy.closeAll();
  allowedHost.closeAllConnections();
  await new Promise((r) => allowedHost.close(r));
  await model.close();
});

/** The proxy still does its job: a model request through it gets an answer. */
async function stillServes(port?: number) {
  const r = await guestRequest(proxy, TASK, { path: '/v1/messages', body: messagesBody(false), port });
  assert.equal(r.status, 200, r.text);
  assert.equal(crashes.length, 0, crashes.map((e) => e.stack).join('\n'));
}

test('malformed CONNECT targets get 400 with the reason, on both paths, and Lia stays up', async () => {
  const targets = [
    'registry.npmjs.org:abc',
    'registry.npmjs.org:99999',
    'registry.npmjs.org:0',
    'registry.npmjs.org:-1',
    'registry.npmjs.org:+443',
    'registry.npmjs.org:0x1bb',
    'registry.npmjs.org:',
    'registry.npmjs.org',
    ':443',
    '[::1]:443',
    'registry.npmjs.org:443:1',
    'reg%69stry.npmjs.org:443',
    'user@registry.npmjs.org:443',
    '2130706433:443',
    `${'a'.repeat(300)}.org:443`,
  ];
  for (const port of [listenerPort, undefined]) {
    for (const target of targets) {
      const got = await rawExchange(
        guestConnection(proxy, TASK, port),
        `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`,
      );
      assert.match(statusLine(got), /^HTTP\/1\.1 400 /, `CONNECT ${target}: ${got}`);
      assert.match(got, /host:port/);
    }
  }
  await stillServes(listenerPort);
});

test('CONNECT reaches only allowed host:port pairs; a bare host means port 443', async () => {
  for (const target of [
    'registry.npmjs.org:22',
    'registry.npmjs.org:80',
    'example.com:443',
    '127.0.0.1:22',
  ]) {
    const got = await rawExchange(guestConnection(proxy, TASK), `CONNECT ${target} HTTP/1.1\r\n\r\n`);
    assert.match(statusLine(got), /^HTTP\/1\.1 403 /, `CONNECT ${target}: ${got}`);
    assert.match(got, /not on this host's egress allowlist/);
  }
  // The allowed pair: a tunnel, through which the allowed host answers.
  const tunnel = guestConnection(proxy, TASK, listenerPort);
  const got = await rawExchange(
    tunnel,
    `CONNECT 127.0.0.1:${allowedPort} HTTP/1.1\r\n\r\nGET /through-the-tunnel HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
  );
  assert.match(statusLine(got), /^HTTP\/1\.1 200 /, got);
  assert.match(got, /allowed host saw GET \/through-the-tunnel/);
});

test('absolute URLs: https:// as a plain request, bad ports, user info → 400; hosts off the list → 403', async () => {
  const cases: [string, RegExp][] = [
    ['GET https://registry.npmjs.org/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    ['GET http://registry.npmjs.org:99999/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    ['GET http://registry.npmjs.org:abc/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    ['GET http://registry.npmjs.org:0/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    [`GET http://user:pw@127.0.0.1:${allowedPort}/ HTTP/1.1`, /^HTTP\/1\.1 400 /],
    ['GET http://[::1]:80/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    ['GET ftp://registry.npmjs.org/ HTTP/1.1', /^HTTP\/1\.1 400 /],
    ['GET http://example.org/ HTTP/1.1', /^HTTP\/1\.1 403 /],
    // A bare host on the list is port 443, and that is for CONNECT: plain http to it is not allowed.
    ['GET http://registry.npmjs.org/ HTTP/1.1', /^HTTP\/1\.1 403 /],
    ['GET * HTTP/1.1', /^HTTP\/1\.1 400 /],
  ];
  for (const port of [listenerPort, undefined]) {
    for (const [line, want] of cases) {
      const got = await rawExchange(
        guestConnection(proxy, TASK, port),
        `${line}\r\nhost: x\r\nconnection: close\r\n\r\n`,
      );
      assert.match(statusLine(got), want, `${line}: ${got}`);
    }
  }
  const ok = await rawExchange(
    guestConnection(proxy, TASK),
    `GET http://127.0.0.1:${allowedPort}/plain HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`,
  );
  assert.match(ok, /allowed host saw GET \/plain/);
  await stillServes();
});

test("the model API's other routes get 403 and never reach it with the key", async () => {
  const before = model.requests.length;
  const refused: [string, string][] = [
    ['GET', '/v1/files'],
    ['POST', '/v1/files'],
    ['GET', '/v1/files/file_011CNha8iCJcU1wXNR6q4V8w/content'],
    ['DELETE', '/v1/files/file_011CNha8iCJcU1wXNR6q4V8w'],
    ['GET', '/v1/messages/batches'],
    ['POST', '/v1/messages/batches'],
    ['DELETE', '/v1/messages/batches/msgbatch_01'],
    ['GET', '/v1/models'],
    ['POST', '/v1/complete'],
    ['GET', '/v1/messages'],
    ['DELETE', '/v1/messages'],
    ['POST', '/v1/messages/'],
    ['POST', '//v1/messages'],
    ['POST', '/v1/messages/../files'],
    ['POST', '/v1/messages%2f..%2ffiles'],
    ['POST', '/v1/messages?beta=true&limit=1000'],
    ['POST', '/v1/organizations/me/api_keys'],
    ['GET', '/api/hello'],
  ];
  for (const [method, path] of refused) {
    const r = await guestRequest(proxy, TASK, { method, path, body: method === 'GET' ? undefined : '{}' });
    assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${r.text}`);
    const e = JSON.parse(r.text);
    assert.equal(e.type, 'error');
    assert.equal(e.error.type, 'permission_error');
    assert.match(e.error.message, /forwards only POST \/v1\/messages, POST \/v1\/messages\/count_tokens/);
  }
  assert.equal(model.requests.length, before, JSON.stringify(model.requests.slice(before)));
  // What Claude Code does call still works.
  const messages = await guestRequest(proxy, TASK, {
    path: '/v1/messages?beta=true',
    body: messagesBody(true),
  });
  assert.equal(messages.status, 200);
  const count = await guestRequest(proxy, TASK, {
    path: '/v1/messages/count_tokens?beta=true',
    body: messagesBody(false),
  });
  assert.equal(count.status, 200);
  const hello = await guestRequest(proxy, TASK, { method: 'HEAD', path: '/api/hello' });
  assert.equal(hello.status, 200);
  assert.deepEqual(model.unserved, []);
});

test('a budget spent: the model call gets a 429 Claude Code shows and does not retry; it never reaches the API', async () => {
  const message = 'Lia: this task has used its model budget (25,000,000 of 25,000,000 tokens)';
  budget = { ok: false, message };
  try {
    const before = model.requests.length;
    const r = await guestRequest(proxy, TASK, { path: '/v1/messages?beta=true', body: messagesBody(true) });
    assert.equal(r.status, 429);
    assert.equal(r.headers['x-should-retry'], 'false');
    assert.deepEqual(JSON.parse(r.text), { type: 'error', error: { type: 'rate_limit_error', message } });
    assert.equal(model.requests.length, before, 'nothing reached the model API');
    assert.deepEqual(budgetRefusals, [message]);
    assert.equal(proxy.busy(TASK), false);
    // Counting tokens is free: not a budget matter.
    const count = await guestRequest(proxy, TASK, {
      path: '/v1/messages/count_tokens?beta=true',
      body: messagesBody(false),
    });
    assert.equal(count.status, 200);
  } finally {
    budget = { ok: true };
  }
  await stillServes();
});

test('a connection flood: connections past the cap get 503, memory stays bounded, Lia stays up', async () => {
  const FLOOD = 3000;
  const rssBefore = process.memoryUsage.rss();
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  const conns: net.Socket[] = [];
  const answers: Promise<string>[] = [];
  // Half over the TCP listener, half through accept(); each asks for a tunnel the allowed host holds open.
  for (let i = 0; i < FLOOD; i++) {
    const c = guestConnection(proxy, TASK, i % 2 ? listenerPort : undefined) as net.Socket;
    conns.push(c);
    answers.push(
      new Promise((resolve) => {
        let got = '';
        c.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (got.includes('\r\n\r\n')) resolve(statusLine(got));
        });
        c.on('error', () => resolve(`error: ${got}`));
        c.on('close', () => resolve(statusLine(got) || 'closed'));
      }),
    );
    c.write(`CONNECT 127.0.0.1:${allowedPort} HTTP/1.1\r\n\r\n`);
    if (i % 200 === 199) await sleep(5);
  }
  const lines = await Promise.all(answers);
  const opened = lines.filter((l) => / 200 /.test(l)).length;
  const refused = lines.filter((l) => / 503 /.test(l)).length;
  assert.equal(opened, 64, `tunnels opened: ${opened}; ${JSON.stringify(lines.slice(0, 5))}`);
  assert.equal(
    opened + refused,
    FLOOD,
    JSON.stringify(lines.filter((l) => !/ (200|503) /.test(l)).slice(0, 5)),
  );
  assert.equal(proxy.stats(TASK).connections, 64);
  // Another task is not affected by this one's flood.
  const other = await guestRequest(proxy, 't_othertask2', {
    path: '/v1/messages',
    body: messagesBody(false),
  });
  assert.equal(other.status, 200);
  for (const c of conns) c.destroy();
  await until('the flood to be closed', () => proxy.stats(TASK).connections === 0);
  clearInterval(sampler);
  const growth = (peak - rssBefore) / 1024 / 1024;
  console.log(
    `[flood] ${FLOOD} connections: ${opened} tunnels, ${refused} refused; RSS ${Math.round(rssBefore / 1048576)} MiB → peak ${Math.round(peak / 1048576)} MiB (+${growth.toFixed(1)} MiB)`,
  );
  // Both ends of 3,000 connections live in this process; the proxy's share is bounded by the cap.
  assert.ok(growth < 150, `RSS grew by ${growth.toFixed(1)} MiB`);
  await stillServes(listenerPort);
});

test('idle connections are closed; a tunnel has a lifetime', async () => {
  const p = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [`127.0.0.1:${allowedPort}`],
    limits: { connectionIdleMs: 300, tunnelMaxMs: 1500 },
  });
  try {
    // Sends nothing at all.
    const silent = guestConnection(p, TASK);
    silent.on('error', () => {});
    const silentClosed = new Promise((r) => silent.on('close', r));
    // Half a request line, then nothing (slowloris).
    const slow = guestConnection(p, TASK);
    slow.on('error', () => {});
    slow.write('POST /v1/messages HTTP/1.1\r\nhost: x\r\n');
    const slowClosed = new Promise((r) => slow.on('close', r));
    const t0 = Date.now();
    await Promise.all([silentClosed, slowClosed]);
    assert.ok(Date.now() - t0 < 1500, `closed after ${Date.now() - t0} ms`);
    // A tunnel kept busy is still closed at its lifetime.
    const tunnel = guestConnection(p, TASK);
    tunnel.on('error', () => {});
    tunnel.on('data', () => {});
    tunnel.write(`CONNECT 127.0.0.1:${allowedPort} HTTP/1.1\r\n\r\n`);
    const keepBusy = setInterval(() => tunnel.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 100);
    const t1 = Date.now();
    await new Promise((r) => tunnel.on('close', r));
    clearInterval(keepBusy);
    const lived = Date.now() - t1;
    assert.ok(lived >= 1400 && lived < 3000, `the tunnel lived ${lived} ms`);
    await until('no connection left', () => p.stats(TASK).connections === 0);
  } finally {
    await p.closeAll();
  }
});

test('model requests in flight per task are capped (429 with retry-after), the rest of the host is not', async () => {
  const p = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [],
    limits: { modelRequestsPerTask: 2 },
  });
  try {
    model.script.push({ kind: 'slow', intervalMs: 50 }, { kind: 'slow', intervalMs: 50 });
    const held: http.ClientRequest[] = [];
    const pending = [1, 2].map(() =>
      guestRequest(p, TASK, {
        path: '/v1/messages',
        body: messagesBody(true),
        onResponse: (_res, req) => held.push(req),
      }).catch(() => undefined),
    );
    await until('two requests in flight', () => held.length === 2);
    const third = await guestRequest(p, TASK, { path: '/v1/messages', body: messagesBody(false) });
    assert.equal(third.status, 429);
    assert.equal(third.headers['retry-after'], '1');
    const elsewhere = await guestRequest(p, 't_elsewhere2', {
      path: '/v1/messages',
      body: messagesBody(false),
    });
    assert.equal(elsewhere.status, 200);
    for (const r of held) r.destroy();
    await Promise.all(pending);
    await until('nothing in flight', () => !p.busy(TASK));
  } finally {
    await p.closeAll();
  }
});

test('garbage on the wire, huge headers and upgrades get 4xx and a closed connection', async () => {
  const cases: [string, RegExp][] = [
    ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', /^HTTP\/1\.1 400 /],
    [
      'GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n',
      /^HTTP\/1\.1 400 /,
    ],
    [`GET /v1/messages HTTP/1.1\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    [
      'GET /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n',
      /^HTTP\/1\.1 400 /,
    ],
  ];
  for (const port of [listenerPort, undefined]) {
    for (const [bytes, want] of cases) {
      const got = await rawExchange(guestConnection(proxy, TASK, port), bytes);
      assert.match(
        statusLine(got),
        want,
        `${JSON.stringify(bytes.slice(0, 60))}: ${JSON.stringify(got.slice(0, 200))}`,
      );
    }
  }
  await stillServes();
});
