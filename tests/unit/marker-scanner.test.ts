/** The markers of a headless run (a turn started, a turn's summary), found in the output stream however the chunks cut it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MarkerScanner } from '../../activities/marker-scanner.js';
import { MARKER_OSC_END, MARKER_OSC_PREFIX, markerText } from '../../common/guest-markers.js';

const summary = { result: 'done: 3 files changed', isError: false, numTurns: 4, durationMs: 1234, turn: 2 };
const marker = markerText('summary', summary);
const started = markerText('turn', { n: 2, state: 'running' });
const output = Buffer.from(`${started}some output\r\n\x1b[32mcolour\x1b[0m${marker}after\r\n`, 'latin1');
const both = [
  { kind: 'turn', n: 2 },
  { kind: 'summary', summary },
];

test('found whole in one chunk, in order', () => {
  assert.deepEqual(new MarkerScanner().push(output), both);
});

test('found when cut at every position into two chunks', () => {
  for (let i = 1; i < output.length; i++) {
    const s = new MarkerScanner();
    const found = [...s.push(output.subarray(0, i)), ...s.push(output.subarray(i))];
    assert.deepEqual(found, both, `cut at ${i}`);
  }
});

test('found when fed one byte at a time', () => {
  const s = new MarkerScanner();
  const found = [...output].flatMap((b) => s.push(Buffer.from([b])));
  assert.deepEqual(found, both);
});

test("the first version's summary (no turn) is still read", () => {
  const old = { result: 'ok', isError: false, numTurns: 1, durationMs: 5 };
  const raw = `\x1b]7777;lia-summary;${Buffer.from(JSON.stringify(old)).toString('base64')}\x07`;
  assert.deepEqual(new MarkerScanner().push(Buffer.from(raw, 'latin1')), [{ kind: 'summary', summary: old }]);
});

test('a forged or malformed marker is ignored, and the scanner goes on', () => {
  const s = new MarkerScanner();
  assert.deepEqual(s.push(Buffer.from(markerText('summary', { result: 5 }), 'latin1')), []);
  assert.deepEqual(s.push(Buffer.from(markerText('turn', { n: -1, state: 'running' }), 'latin1')), []);
  assert.deepEqual(s.push(Buffer.from(`${MARKER_OSC_PREFIX}summary;!!!${MARKER_OSC_END}`, 'latin1')), []);
  assert.deepEqual(s.push(Buffer.from(`${MARKER_OSC_PREFIX}other;e30=${MARKER_OSC_END}`, 'latin1')), []);
  assert.deepEqual(s.push(output), both);
});

test('an unterminated marker does not hold memory without bound', () => {
  const s = new MarkerScanner();
  s.push(Buffer.from(`${MARKER_OSC_PREFIX}summary;`, 'latin1'));
  for (let i = 0; i < 100; i++) assert.deepEqual(s.push(Buffer.alloc(4096, 0x41)), []);
  // After the cap the half marker is forgotten; a whole one later is still found.
  assert.deepEqual(s.push(output), both);
});
