/** The stream protocol's client half: output once, input kept until acknowledged and resent in order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamSession } from '../../api/stream-session.js';

const frames = (sent: string[]) => sent.map((f) => JSON.parse(f));

test('a chunk is handed on once, and a reconnect asks from the next seq', () => {
  const s = new StreamSession('abc', 5);
  assert.equal(s.query(), 'from=5&sender=abc');
  assert.equal(s.chunk(5), true);
  assert.equal(s.chunk(5), false);
  assert.equal(s.chunk(3), false);
  assert.equal(s.chunk(7), true);
  assert.equal(s.query(), 'from=8&sender=abc');
});

test('input typed offline goes out on open, after the size; acknowledged input is not resent', () => {
  const s = new StreamSession('x');
  s.input('ab');
  s.resize(100, 30);
  const first: string[] = [];
  s.opened((f) => first.push(f));
  assert.deepEqual(frames(first), [
    { type: 'resize', cols: 100, rows: 30 },
    { type: 'input', data: 'ab', seq: 1 },
  ]);
  s.input('cd');
  assert.deepEqual(frames(first).at(-1), { type: 'input', data: 'cd', seq: 2 });
  s.message({ type: 'ack', seq: 1 });
  s.lost();
  const second: string[] = [];
  s.opened((f) => second.push(f));
  assert.deepEqual(frames(second).slice(1), [{ type: 'input', data: 'cd', seq: 2 }]);
});

test('a long paste is cut into pieces without splitting a surrogate pair', () => {
  const s = new StreamSession('x');
  const sent: string[] = [];
  s.opened((f) => sent.push(f));
  const text = `${'a'.repeat(16 * 1024 - 1)}😀${'b'.repeat(10)}`;
  s.input(text);
  const pieces = frames(sent).map((f) => f.data as string);
  assert.equal(pieces.join(''), text);
  assert.equal(pieces.length, 2);
  assert.equal(pieces[0], 'a'.repeat(16 * 1024 - 1));
  assert.ok(pieces.every((p) => p.length <= 16 * 1024));
});

test('inputStored waits for the last acknowledgement, or gives up after its timeout', async () => {
  const s = new StreamSession('x');
  s.opened(() => {});
  s.input('1');
  s.input('2');
  const stored = s.inputStored(5000);
  s.message({ type: 'ack', seq: 1 });
  s.message({ type: 'ack', seq: 2 });
  assert.equal(await stored, true);
  s.input('3');
  assert.equal(await s.inputStored(50), false);
});

test('reconnect delays back off to at most about 5 s', () => {
  const s = new StreamSession('x');
  const waits = Array.from({ length: 8 }, () => s.lost());
  assert.ok(waits[0]! >= 187 && waits[0]! <= 313, String(waits[0]));
  assert.ok(waits[7]! >= 3750 && waits[7]! <= 6250, String(waits[7]));
  s.opened(() => {});
  assert.ok(s.lost() <= 313, 'an open resets the delay');
});
