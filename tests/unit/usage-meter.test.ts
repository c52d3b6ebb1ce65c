/**
 * The usage meter on its own: every encoding the proxy asks for (and identity), server-sent
 * events split at every byte and JSON, cache tokens, a stream cut short, and what it cannot read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { decodable, UsageMeter } from '../../vm/egress/usage-meter.js';

const USAGE = {
  input_tokens: 1234,
  cache_read_input_tokens: 45_678,
  cache_creation_input_tokens: 910,
};
const WANT = {
  model: 'claude-opus-4-5',
  inputTokens: 1234,
  outputTokens: 321,
  cacheReadTokens: 45_678,
  cacheCreationTokens: 910,
};

function sse(lineEnd: string): string {
  const ev = (type: string, data: unknown) =>
    `event: ${type}${lineEnd}data: ${JSON.stringify({ type, ...(data as object) })}${lineEnd}${lineEnd}`;
  return [
    ev('message_start', {
      message: { id: 'msg_1', model: 'claude-opus-4-5', content: [], usage: { ...USAGE, output_tokens: 1 } },
    }),
    ev('ping', {}),
    ev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }),
    ev('content_block_delta', {
      index: 0,
      delta: { type: 'thinking_delta', thinking: 'Hmm — ünïcödé 🙂 ✓' },
    }),
    ev('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'c2ln' } }),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'text', text: '' } }),
    ev('content_block_delta', { index: 1, delta: { type: 'text_delta', text: '日本語のテキスト 🙂' } }),
    ev('content_block_stop', { index: 1 }),
    ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 321 } }),
    ev('message_stop', {}),
  ].join('');
}

const JSON_BODY = JSON.stringify({
  id: 'msg_2',
  type: 'message',
  model: 'claude-opus-4-5',
  content: [{ type: 'text', text: 'Grüße 🙂' }],
  usage: { ...USAGE, output_tokens: 321 },
});

function encode(encoding: string, text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (encoding === 'gzip') return zlib.gzipSync(b);
  if (encoding === 'deflate') return zlib.deflateSync(b);
  if (encoding === 'br') return zlib.brotliCompressSync(b);
  return b;
}

async function meter(encoding: string, isSse: boolean, chunks: Buffer[]) {
  const m = new UsageMeter(encoding, isSse);
  for (const c of chunks) m.write(c);
  m.end();
  return m.result;
}

for (const encoding of ['identity', 'gzip', 'deflate', 'br']) {
  for (const lineEnd of ['\n', '\r\n', '\r']) {
    test(`${encoding}: server-sent events (${JSON.stringify(lineEnd)}) split at every byte`, async () => {
      const bytes = encode(encoding, sse(lineEnd));
      const whole = await meter(encoding, true, [bytes]);
      assert.deepEqual(whole.usage, WANT);
      assert.equal(whole.complete, true);
      for (let i = 0; i <= bytes.length; i++) {
        const r = await meter(encoding, true, [bytes.subarray(0, i), bytes.subarray(i)]);
        assert.deepEqual(r.usage, WANT, `split at ${i} of ${bytes.length}`);
      }
      const byByte = await meter(
        encoding,
        true,
        [...bytes].map((b) => Buffer.from([b])),
      );
      assert.deepEqual(byByte.usage, WANT, 'one byte at a time');
    });
  }

  test(`${encoding}: a JSON message split at every byte, and its body kept`, async () => {
    const bytes = encode(encoding, JSON_BODY);
    for (let i = 0; i <= bytes.length; i++) {
      const r = await meter(encoding, false, [bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(r.usage, WANT, `split at ${i} of ${bytes.length}`);
      assert.equal(r.body, JSON_BODY);
    }
  });

  test(`${encoding}: a stream cut short still yields what arrived (the input side)`, async () => {
    const text = sse('\n');
    const cutAt = text.indexOf('event: content_block_delta');
    // Compress the whole stream with flushes, as a server does, and cut after message_start.
    let bytes: Buffer;
    if (encoding === 'identity') bytes = Buffer.from(text.slice(0, cutAt));
    else {
      const z =
        encoding === 'gzip'
          ? zlib.createGzip()
          : encoding === 'deflate'
            ? zlib.createDeflate()
            : zlib.createBrotliCompress();
      const out: Buffer[] = [];
      z.on('data', (c: Buffer) => out.push(c));
      z.write(text.slice(0, cutAt));
      await new Promise<void>((r) =>
        encoding === 'br'
          ? z.flush(zlib.constants.BROTLI_OPERATION_FLUSH, () => r())
          : z.flush(zlib.constants.Z_SYNC_FLUSH, () => r()),
      );
      bytes = Buffer.concat(out);
      z.destroy();
    }
    const m = new UsageMeter(encoding, true);
    m.write(bytes);
    m.abort('the guest went away');
    const r = await m.result;
    assert.equal(r.complete, false);
    assert.deepEqual(r.usage, { ...WANT, outputTokens: 1 });
  });
}

test('newer APIs repeat the input figures in message_delta: the last value wins', async () => {
  const text =
    `data: ${JSON.stringify({ type: 'message_start', message: { model: 'claude-haiku-4-5', usage: { input_tokens: 10, output_tokens: 1 } } })}\n\n` +
    `data: ${JSON.stringify({ type: 'message_delta', usage: { input_tokens: 12, cache_read_input_tokens: 5, output_tokens: 7 } })}\n\n`;
  const r = await meter('identity', true, [Buffer.from(text)]);
  assert.deepEqual(r.usage, {
    model: 'claude-haiku-4-5',
    inputTokens: 12,
    outputTokens: 7,
    cacheReadTokens: 5,
    cacheCreationTokens: 0,
  });
});

test('one-hour cache writes are told apart (they cost more)', async () => {
  const body = JSON.stringify({
    model: 'claude-sonnet-4-5',
    usage: {
      input_tokens: 5,
      output_tokens: 6,
      cache_creation_input_tokens: 700,
      cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 400 },
    },
  });
  const r = await meter('identity', false, [Buffer.from(body)]);
  assert.deepEqual(r.usage, {
    model: 'claude-sonnet-4-5',
    inputTokens: 5,
    outputTokens: 6,
    cacheReadTokens: 0,
    cacheCreationTokens: 700,
    cacheCreation1hTokens: 400,
  });
});

test('a last event without its blank line counts; junk and overlong lines are skipped', async () => {
  const long = `data: ${'x'.repeat(2 * 1024 * 1024)}\n\n`;
  const text =
    'data: not json\n\n' +
    long +
    `data: ${JSON.stringify({ type: 'message_start', message: { model: 'm', usage: { input_tokens: 3, output_tokens: -5 } } })}`;
  const r = await meter('identity', true, [Buffer.from(text)]);
  assert.deepEqual(r.usage, {
    model: 'm',
    inputTokens: 3,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
  });
});

test('no usage, an error body, and an encoding it cannot read', async () => {
  const err = await meter('gzip', false, [
    zlib.gzipSync('{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'),
  ]);
  assert.equal(err.usage, undefined);
  assert.match(err.body, /invalid x-api-key/);
  for (const e of ['zstd', 'gzip, br', 'compress', 'x-unknown']) assert.equal(decodable(e), false, e);
  for (const e of ['identity', 'gzip', 'deflate', 'br']) assert.equal(decodable(e), true, e);
  const z = new UsageMeter('zstd', true);
  z.write(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  z.end();
  const r = await z.result;
  assert.equal(r.usage, undefined);
  assert.equal(r.complete, false);
  assert.match(r.error!, /zstd cannot be metered/);
});

test('corrupt compressed data ends the meter with an error, not a hang', async () => {
  const r = await meter('gzip', true, [Buffer.from('this is not gzip at all')]);
  assert.equal(r.complete, false);
  assert.ok(r.error);
});
