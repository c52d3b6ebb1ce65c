/**
 * Model-API traffic from inside a real guest, through whatever egress path the driver gives it
 * (today: the sidecar channel; before: QEMU user networking + guestfwd + socat), to a model-API
 * stand-in on the host behind the host's egress proxy:
 *   latency   small POST /v1/messages, a new connection each (median, p95)
 *   reuse     the same over one kept-alive connection (what Claude Code does)
 *   down      one 32 MiB response body
 *   up        one 8 MiB request body
 * The guest runs the measurements itself (Node.js, so nothing but the path is timed).
 * Run: ./lia bench bench/egress.ts [rounds]   (default 3; LIA__VM__DRIVER as for Lia, default qemu;
 * LIA_BENCH_PROFILE=firecracker boots Firecracker's artifacts under QEMU's microvm)
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import type { VmDriver } from '../vm/driver.js';
import { EgressProxy } from '../vm/egress/proxy.js';
import { qemuCandidate, selectDriver } from '../vm/select.js';
import { SidecarConnection } from '../vm/sidecar/client.js';

const rounds = Number(process.argv[2] ?? 3);
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-bench-egress-'));

const model = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  let got = 0;
  let head = '';
  req.on('data', (d: Buffer) => {
    got += d.length;
    if (head.length < 64) head += d.subarray(0, 64).toString();
  });
  req.on('end', () => {
    // The proxy forwards only the Messages routes: a download is a message body asking for bytes.
    const asked = /^\{"bytes":(\d+)/.exec(head);
    if (url.pathname === '/v1/messages' && asked) {
      const n = Number(asked[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= c.length;
          if (!res.write(c)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'msg_bench', type: 'message', received: got }));
  });
});
await new Promise<void>((r) => model.listen(0, '127.0.0.1', r));
const modelPort = (model.address() as net.AddressInfo).port;

const config = loadConfig({
  ...process.env,
  LIA__VM__DRIVER: process.env.LIA__VM__DRIVER ?? 'qemu',
  LIA__STATE__DIR: stateDir,
  LIA__HOST__ID: 'bench',
  LIA__CLAUDE__API_KEY: 'sk-bench-host-key',
  LIA__CLAUDE__BASE_URL: `http://127.0.0.1:${modelPort}`,
});
const egress = new EgressProxy({
  modelBaseUrl: config.claude.base_url,
  apiKey: config.claude.api_key,
  allowHosts: [],
});
const logger = createLogger('bench', 'warn');
const driver: VmDriver =
  process.env.LIA_BENCH_PROFILE === 'firecracker'
    ? await qemuCandidate(config, logger, egress, 'firecracker').build()
    : await selectDriver(config, logger, egress);

/** Runs in the guest: prints one EGRESS {json} line. */
const GUEST = `
const http = require('http');
const base = new URL(process.env.ANTHROPIC_BASE_URL);
const req = (agent, method, p, body) => new Promise((resolve, reject) => {
  const t = performance.now();
  const r = http.request({ host: base.hostname, port: base.port, method, path: p, agent,
    headers: { 'content-type': 'application/json', 'content-length': body ? body.length : 0 } }, (res) => {
    let n = 0; res.on('data', (d) => { n += d.length; }); res.on('end', () => resolve({ ms: performance.now() - t, n }));
  });
  r.on('error', reject); if (body) r.write(body); r.end();
});
const q = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
(async () => {
  const small = Buffer.from(JSON.stringify({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
  const fresh = [], reuse = [];
  await req(false, 'POST', '/v1/messages', small);
  for (let i = 0; i < 30; i++) fresh.push((await req(false, 'POST', '/v1/messages', small)).ms);
  const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await req(ka, 'POST', '/v1/messages', small);
  for (let i = 0; i < 30; i++) reuse.push((await req(ka, 'POST', '/v1/messages', small)).ms);
  const down = await req(false, 'POST', '/v1/messages', Buffer.from(JSON.stringify({ bytes: 32 * 1048576 })));
  const up = await req(false, 'POST', '/v1/messages', Buffer.alloc(8 * 1048576, 98));
  console.log('EGRESS ' + JSON.stringify({
    freshP50: q(fresh, 0.5), freshP95: q(fresh, 0.95), reuseP50: q(reuse, 0.5), reuseP95: q(reuse, 0.95),
    downMBs: down.n / 1048576 / (down.ms / 1000), upMBs: 8 / (up.ms / 1000), downBytes: down.n,
  }));
  process.exit(0);
})().catch((e) => { console.log('EGRESS-FAILED ' + e.message); process.exit(1); });`;

interface Result {
  freshP50: number;
  freshP95: number;
  reuseP50: number;
  reuseP95: number;
  downMBs: number;
  upMBs: number;
  downBytes: number;
}

async function measure(taskId: string): Promise<Result> {
  const conn = await SidecarConnection.open(await driver.connect(taskId), 30_000);
  let out = '';
  try {
    return await new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no result from the guest in 300 s:\n${out}`)),
        300_000,
      );
      conn.onFrame(({ header, body }) => {
        if (header.type === 'output') {
          out += body.toString();
          conn.send({ type: 'ack', seq: header.seq });
          const m = /EGRESS (\{.*\})/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(JSON.parse(m[1]!) as Result);
          } else if (/EGRESS-FAILED/.test(out)) reject(new Error(out.slice(-500)));
        }
        if (header.type === 'exit' && !/EGRESS /.test(out)) reject(new Error(`guest exited:\n${out}`));
      });
      conn.send({ type: 'attach', fromSeq: 1 });
      conn.send({
        type: 'start',
        command: '/usr/local/bin/node',
        args: ['-e', GUEST],
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...driver.guestEnv },
        cols: 200,
        rows: 24,
      });
    });
  } finally {
    conn.close();
  }
}

const results: Result[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const taskId = `t_egress${i}`;
    await driver.boot({ taskId, vcpus: 1, memoryMib: 512, storageGb: 4 }, () => {});
    const r = await measure(taskId);
    if (r.downBytes !== 32 * 1048576) throw new Error(`short download: ${r.downBytes} bytes`);
    await driver.destroy(taskId);
    results.push(r);
    console.error(`round ${i + 1}/${rounds}: ${JSON.stringify(r)}`);
  }
} finally {
  for (let i = 0; i < rounds; i++) await driver.destroy(`t_egress${i}`).catch(() => {});
  fs.rmSync(stateDir, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const col = (k: keyof Result) => median(results.map((r) => r[k]));
console.log(
  `egress from a guest: driver ${driver.name} (${driver.acceleration}), ${rounds} rounds, medians; proxy ${driver.guestEnv?.ANTHROPIC_BASE_URL}`,
);
console.log(
  `latency, new connection each   p50 ${col('freshP50').toFixed(1)} ms   p95 ${col('freshP95').toFixed(1)} ms`,
);
console.log(
  `latency, one kept-alive conn.   p50 ${col('reuseP50').toFixed(1)} ms   p95 ${col('reuseP95').toFixed(1)} ms`,
);
console.log(`download 32 MiB                 ${col('downMBs').toFixed(1)} MiB/s`);
console.log(`upload 8 MiB                    ${col('upMBs').toFixed(1)} MiB/s`);
model.close();
process.exit(0);
