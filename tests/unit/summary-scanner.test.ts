/** The end-of-run summary, found in the output stream however the chunks cut it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUMMARY_OSC_END, SUMMARY_OSC_START, SummaryScanner } from '../../activities/summary-scanner.js';

const summary = { result: 'done: 3 files changed', isError: false, numTurns: 4, durationMs: 1234 };
const marker = `${SUMMARY_OSC_START}${Buffer.from(JSON.stringify(summary)).toString('base64')}${SUMMARY_OSC_END}`;
const output = Buffer.from(`some output\r\n\x1b[32mcolour\x1b[0m${marker}after\r\n`, 'latin1');

test('found whole in one chunk', () => {
  assert.deepEqual(new SummaryScanner().push(output), summary);
});

test('found when cut at every position into two chunks', () => {
  for (let i = 1; i < output.length; i++) {
    const s = new SummaryScanner();
    const found = [s.push(output.subarray(0, i)), s.push(output.subarray(i))].filter(Boolean);
    assert.deepEqual(found, [summary], `cut at ${i}`);
  }
});

test('found when fed one byte at a time', () => {
  const s = new SummaryScanner();
  const found = [...output].map((b) => s.push(Buffer.from([b]))).filter(Boolean);
  assert.deepEqual(found, [summary]);
});

test('a forged or malformed summary is ignored, and the scanner goes on', () => {
  const bad = `${SUMMARY_OSC_START}${Buffer.from('{"result": 5}').toString('base64')}${SUMMARY_OSC_END}`;
  const s = new SummaryScanner();
  assert.equal(s.push(Buffer.from(bad, 'latin1')), undefined);
  assert.equal(s.push(Buffer.from(`${SUMMARY_OSC_START}!!!${SUMMARY_OSC_END}`, 'latin1')), undefined);
  assert.deepEqual(s.push(output), summary);
});

test('an unterminated marker does not hold memory without bound', () => {
  const s = new SummaryScanner();
  s.push(Buffer.from(SUMMARY_OSC_START, 'latin1'));
  for (let i = 0; i < 100; i++) assert.equal(s.push(Buffer.alloc(4096, 0x41)), undefined);
  // After the cap the half marker is forgotten; a whole one later is still found.
  assert.deepEqual(s.push(output), summary);
});
