/**
 * The egress streams' multiplexer (vm/channel/mux.ts), host and guest ends over a real socket
 * pair: bytes carried both ways intact; a reader that stops makes the sender stop at the
 * window (the host never holds more); a guest that sends past its grant, sends a frame before
 * hello, or sends garbage loses its session with the reason; a guest over the stream limit
 * gets its extra streams reset; a new host session resets the guest's streams.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { MUX_WINDOW, MuxSession, type MuxStream } from '../../vm/channel/mux.js';
import { encodeFrame, SYNC } from '../../vm/protocol.js';

async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect(port, '127.0.0.1');
  const b = await accepted;
  server.close();
  await new Promise((r) => a.once('connect', r));
  return [a, b];
}

async function pair(opts: { window?: number; maxStreams?: number } = {}) {
  const [h, g] = await socketPair();
  const guest = new MuxSession(g, { role: 'guest' });
  const host = new MuxSession(h, { role: 'host', ...opts });
  await Promise.all([new Promise((r) => host.once('ready', r)), new Promise((r) => guest.once('ready', r))]);
  return { host, guest, h, g };
}

const nextStream = (host: MuxSession) => new Promise<MuxStream>((r) => host.once('stream', r));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
function collect(s: Duplex): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}
const tick = (ms = 50) => new Promise((r) => setTimeout(r, ms));

test('a stream carries bytes both ways, intact, and ends cleanly', async () => {
  const { host, guest } = await pair();
  const opened = nextStream(host);
  const gs = guest.open();
  const hs = await opened;
  const up = randomBytes(3 * 1024 * 1024 + 17);
  const down = randomBytes(5 * 1024 * 1024 + 3);
  const gotUp = collect(hs);
  const gotDown = collect(gs);
  gs.end(up);
  hs.end(down);
  assert.equal(sha(await gotUp), sha(up));
  assert.equal(sha(await gotDown), sha(down));
  await tick();
  assert.equal(host.openStreams, 0, 'both ends done: the host forgot the stream');
  assert.equal(guest.openStreams, 0);
  host.close();
});

test('a reader that stops reading stops the sender at the window: the host holds at most one window', async () => {
  const { host, guest } = await pair();
  const opened = nextStream(host);
  const gs = guest.open();
  const hs = await opened;
  for (const s of [gs, hs]) s.on('error', () => {});
  hs.pause();
  let written = 0;
  const chunk = Buffer.alloc(16 * 1024, 1);
  // The guest writes as fast as it may (respecting write()'s answer): 8 MiB if nothing stopped it.
  const writer = (async () => {
    while (written < 8 * 1024 * 1024) {
      written += chunk.length;
      if (!gs.write(chunk)) await new Promise((r) => gs.once('drain', r));
    }
  })();
  await tick(300);
  const held = hs.readableLength;
  // One window, plus what was granted while the reader's buffer was still under its mark.
  const bound = MUX_WINDOW + hs.readableHighWaterMark;
  assert.ok(held <= bound, `the host holds ${held} bytes, at most a window and a mark (${bound})`);
  assert.ok(held >= MUX_WINDOW / 2, `and the window was used (${held})`);
  assert.ok(written < MUX_WINDOW + 256 * 1024, `the guest was held back (${written} bytes written)`);
  // Reading again lets it all through.
  let got = 0;
  hs.on('data', (d: Buffer) => {
    got += d.length;
  });
  hs.resume();
  await writer;
  gs.end();
  await new Promise((r) => hs.once('end', r));
  assert.equal(got, 8 * 1024 * 1024);
  host.close();
});

/** A hand-written guest: SYNC + hello, then whatever the test sends. */
async function rawGuest() {
  const [h, g] = await socketPair();
  const host = new MuxSession(h, { role: 'host' });
  const closed = new Promise<Error | undefined>((r) => host.once('close', r));
  g.on('error', () => {});
  g.write(SYNC);
  g.write(encodeFrame({ type: 'hello', version: 1, window: 65536, maxData: 65536, maxStreams: 8 }));
  await new Promise((r) => host.once('ready', r));
  return { host, g, closed };
}

test('a guest that sends past its grant loses the session, with the reason', async () => {
  const { host, g, closed } = await rawGuest();
  const opened = nextStream(host);
  g.write(encodeFrame({ type: 'open', id: 1 }));
  const hs = await opened;
  hs.pause();
  const resetErr = new Promise<Error>((r) => hs.once('error', r));
  for (let i = 0; i < MUX_WINDOW / 65536 + 1; i++)
    g.write(encodeFrame({ type: 'data', id: 1 }, Buffer.alloc(65536, 2)));
  const err = await closed;
  assert.match(String(err?.message), /stream 1 sent 65536 bytes with 0 granted/);
  assert.match(String(host.violation), /granted/);
  assert.match((await resetErr).message, /protocol violation/);
});

test('frames the protocol does not allow end the session: before hello, unknown, oversized', async () => {
  for (const [what, frame, reason] of [
    ['data before hello', encodeFrame({ type: 'data', id: 1 }, Buffer.from('x')), /data before hello/],
    ['unknown type', encodeFrame({ type: 'exec', id: 1 }), /unknown frame type/],
    ['an oversized body', encodeFrame({ type: 'data', id: 1 }, Buffer.alloc(70_000)), /bad frame/],
    ['a huge header', encodeFrame({ type: 'open', id: 1, pad: 'x'.repeat(2000) } as never), /bad frame/],
    ['a host-side open', encodeFrame({ type: 'open', id: 1.5 }), /bad open/],
  ] as const) {
    const [h, g] = await socketPair();
    const host = new MuxSession(h, { role: 'host' });
    const closed = new Promise<Error | undefined>((r) => host.once('close', r));
    g.on('error', () => {});
    g.write(SYNC);
    if (what !== 'data before hello')
      g.write(encodeFrame({ type: 'hello', version: 1, window: 65536, maxData: 65536, maxStreams: 8 }));
    g.write(frame);
    const err = await closed;
    assert.match(String(err?.message), reason, what);
  }
});

test('streams over the limit are reset, the session stays; a guest keeps to the limit itself', async () => {
  const { host, g } = await rawGuest();
  host.on('stream', (st: MuxStream) => st.on('error', () => {}));
  const resets: number[] = [];
  const { FrameDecoder } = await import('../../vm/protocol.js');
  const dec = new FrameDecoder<{ type: string; id: number }>();
  g.on('data', (d: Buffer) => {
    for (const f of dec.push(d)) if (f.header.type === 'reset') resets.push(f.header.id);
  });
  for (let id = 1; id <= 40; id++) g.write(encodeFrame({ type: 'open', id }));
  await tick(200);
  assert.equal(host.openStreams, 32, 'the host keeps its limit');
  assert.deepEqual(resets, [33, 34, 35, 36, 37, 38, 39, 40], 'and resets the rest');
  assert.ok(host.isReady, 'without ending the session');
  host.close();

  const p = await pair({ maxStreams: 3 });
  p.host.on('stream', (st: MuxStream) => st.on('error', () => {}));
  for (let i = 0; i < 3; i++) p.guest.open().on('error', () => {});
  assert.throws(() => p.guest.open(), /at most 3 connections/);
  p.host.close();
});

test('a new host session resets the streams of the one before (a worker restart)', async () => {
  const { host, guest, h } = await pair();
  const gs = guest.open();
  const err = new Promise<Error>((r) => gs.once('error', r));
  (await nextStream(host)).on('error', () => {});
  // The same channel, a new host session: a worker that died mid-frame and a new one.
  h.write(encodeFrame({ type: 'data', id: 1 }).subarray(0, 5));
  const second = new MuxSession(h, { role: 'host' });
  await new Promise((r) => second.once('ready', r));
  assert.match((await err).message, /new session/);
  assert.equal(guest.openStreams, 0);
  second.close();
});
