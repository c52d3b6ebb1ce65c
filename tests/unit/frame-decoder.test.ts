/** The sidecar protocol's framing: whatever pieces the stream delivers, whole frames come out. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeFrame,
  FrameDecoder,
  MAX_BODY_BYTES,
  MAX_GUEST_BODY_BYTES,
  type SidecarMessage,
  SYNC,
} from '../../vm/protocol.js';

const frames = [
  encodeFrame({ type: 'output', seq: 1 }, Buffer.from('hello')),
  encodeFrame({ type: 'output', seq: 2 }, Buffer.alloc(70_000, 7)),
  encodeFrame({ type: 'exit', code: 0, signal: null }),
];
const stream = Buffer.concat([SYNC, ...frames]);

function decodeIn(pieces: Buffer[]) {
  const d = new FrameDecoder<SidecarMessage>();
  return pieces.flatMap((p) => d.push(p));
}

test('frames split at every byte boundary come out whole and in order', () => {
  const out = decodeIn([...stream].map((b) => Buffer.from([b])));
  assert.deepEqual(
    out.map((f) => f.header),
    [
      { type: 'output', seq: 1 },
      { type: 'output', seq: 2 },
      { type: 'exit', code: 0, signal: null },
    ],
  );
  assert.equal(out[0]!.body.toString(), 'hello');
  assert.equal(out[1]!.body.length, 70_000);
  assert.ok(out[1]!.body.every((b) => b === 7));
});

test('frames split into random pieces', () => {
  for (let round = 0; round < 50; round++) {
    const pieces: Buffer[] = [];
    for (let i = 0; i < stream.length; ) {
      const n = 1 + Math.floor(Math.random() * 9000);
      pieces.push(stream.subarray(i, i + n));
      i += n;
    }
    assert.equal(decodeIn(pieces).length, 3);
  }
});

test('garbage before the SYNC is dropped, even garbage that looks like a frame', () => {
  const garbage = Buffer.concat([
    Buffer.from('noise'),
    encodeFrame({ type: 'output', seq: 99 }),
    Buffer.from([1, 2]),
  ]);
  const out = decodeIn([garbage, stream.subarray(0, 10), stream.subarray(10)]);
  assert.deepEqual(
    out.map((f) => (f.header as { seq?: number }).seq),
    [1, 2, undefined],
  );
});

test('a SYNC split across two pieces is still found', () => {
  const half = SYNC.length >> 1;
  const out = decodeIn([
    Buffer.from('xx'),
    SYNC.subarray(0, half),
    Buffer.concat([SYNC.subarray(half), frames[0]!]),
  ]);
  assert.equal(out.length, 1);
});

test('a later SYNC starts afresh: a frame cut in half by a dying peer is dropped', () => {
  const cut = frames[1]!.subarray(0, 1000);
  const out = decodeIn([Buffer.concat([SYNC, frames[0]!, cut]), Buffer.concat([SYNC, frames[2]!])]);
  assert.deepEqual(
    out.map((f) => f.header.type),
    ['output', 'exit'],
  );
});

test('an oversized length is refused at once, before its body arrives', () => {
  const d = new FrameDecoder();
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(10, 0);
  prefix.writeUInt32BE(MAX_BODY_BYTES + 1, 4);
  assert.throws(() => d.push(Buffer.concat([SYNC, prefix])), /bad frame/);
});

test('a header that is not a typed JSON object is refused', () => {
  const h = Buffer.from('[1,2]');
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(h.length, 0);
  prefix.writeUInt32BE(0, 4);
  assert.throws(() => new FrameDecoder().push(Buffer.concat([SYNC, prefix, h])), /bad frame/);
});

test('a 16 MiB frame in 4 KiB pieces is joined once, not once per piece', () => {
  // Quadratic joining would copy ~32 GB here (minutes); linear joining copies 16 MiB.
  const big = Buffer.concat([
    SYNC,
    encodeFrame({ type: 'output', seq: 1 }, Buffer.alloc(16 * 1024 * 1024 - 64, 1)),
  ]);
  const d = new FrameDecoder();
  const started = performance.now();
  const out: unknown[] = [];
  for (let i = 0; i < big.length; i += 4096) out.push(...d.push(big.subarray(i, i + 4096)));
  assert.equal(out.length, 1);
  assert.ok(performance.now() - started < 5000, `took ${Math.round(performance.now() - started)} ms`);
});

test("the host's decoder refuses a guest frame over its smaller limit", () => {
  const d = new FrameDecoder(undefined, MAX_GUEST_BODY_BYTES);
  const frame = encodeFrame({ type: 'output', seq: 1 }, Buffer.alloc(MAX_GUEST_BODY_BYTES + 1));
  assert.throws(() => d.push(Buffer.concat([SYNC, frame.subarray(0, 100)])), /bad frame.*at most/);
});
