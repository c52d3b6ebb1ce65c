/**
 * The egress proxy: the model API gets the host's key (never the guest's), other hosts only
 * when allowlisted, and a model request in flight counts as activity.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { EgressProxy } from '../../vm/egress/proxy.js';

const KEY = 'sk-ant-host-only-key-0123456789';
let model: http.Server;
let modelPort = 0;
const seen: { path: string; key?: string; auth?: string }[] = [];
let release: (() => void) | undefined;

before(async () => {
  model = http.createServer((req, res) => {
    seen.push({
      path: req.url ?? '',
      key: req.headers['x-api-key'] as string,
      auth: req.headers.authorization,
    });
    if (req.headers['x-api-key'] !== KEY) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}');
      return;
    }
    const reply = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    // The proxy forwards no query but beta=true: a slow answer is asked for in the body.
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (body.includes('"slow"')) release = reply;
      else reply();
    });
  });
  await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
  modelPort = (model.address() as net.AddressInfo).port;
});
after(() => model.close());

async function viaProxy(port: number, path: string, headers: Record<string, string> = {}, body = '{}') {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body });
  return { status: res.status, body: await res.text() };
}

test('model requests get the host key; whatever key the guest sends is dropped', async () => {
  const proxy = new EgressProxy({
    modelBaseUrl: `http://127.0.0.1:${modelPort}`,
    apiKey: KEY,
    allowHosts: [],
  });
  const port = await proxy.open('t_aaaaaaaaaa');
  const r = await viaProxy(port, '/v1/messages', {
    'x-api-key': 'guest-fake',
    authorization: 'Bearer guest',
  });
  assert.equal(r.status, 200, r.body);
  const last = seen.at(-1)!;
  assert.equal(last.path, '/v1/messages');
  assert.equal(last.key, KEY);
  assert.equal(last.auth, undefined);
  await proxy.closeAll();
});

test('without a key on the host the guest gets a clear 401', async () => {
  const proxy = new EgressProxy({
    modelBaseUrl: `http://127.0.0.1:${modelPort}`,
    apiKey: undefined,
    allowHosts: [],
  });
  const port = await proxy.open('t_bbbbbbbbbb');
  const r = await viaProxy(port, '/v1/messages');
  assert.equal(r.status, 401);
  assert.match(r.body, /LIA__CLAUDE__API_KEY/);
  await proxy.closeAll();
});

test('hosts off the allowlist are refused, by CONNECT and by absolute URL; allowed ones pass', async () => {
  const proxy = new EgressProxy({
    modelBaseUrl: `http://127.0.0.1:${modelPort}`,
    apiKey: KEY,
    allowHosts: [`127.0.0.1:${modelPort}`],
  });
  const port = await proxy.open('t_cccccccccc');
  const connect = (target: string) =>
    new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () =>
        s.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`),
      );
      s.once('data', (d) => {
        resolve(d.toString().split('\r\n')[0]!);
        s.destroy();
      });
    });
  assert.match(await connect('example.com:443'), /403/);
  assert.match(await connect(`127.0.0.1:${modelPort}`), /200/);
  const refused = await new Promise<number>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: 'http://example.org/' }, (res) => resolve(res.statusCode ?? 0));
  });
  assert.equal(refused, 403);
  await proxy.closeAll();
});

test('a model request in flight counts as activity', async () => {
  const proxy = new EgressProxy({
    modelBaseUrl: `http://127.0.0.1:${modelPort}`,
    apiKey: KEY,
    allowHosts: [],
  });
  const port = await proxy.open('t_dddddddddd');
  assert.equal(proxy.busy('t_dddddddddd'), false);
  const pending = viaProxy(port, '/v1/messages', {}, '{"slow":true}');
  const since = Date.now();
  while (!release) {
    assert.ok(
      Date.now() - since < 10_000,
      `the request did not reach the model: ${(await Promise.race([pending, Promise.resolve(undefined)]))?.status ?? 'pending'}`,
    );
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(proxy.busy('t_dddddddddd'), true);
  release();
  assert.equal((await pending).status, 200);
  assert.equal(proxy.busy('t_dddddddddd'), false);
  await proxy.closeAll();
});
