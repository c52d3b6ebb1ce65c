/** Output tails posted to Discord threads: plain text, at most 2,000 characters, one intact code block. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DISCORD_MAX_CHARS, plainText, tailBlock, threadPost } from '../../bot/tail.js';

const fences = (s: string) => (s.match(/```/g) ?? []).length;

test('escapes and redraws are removed', () => {
  assert.equal(plainText('\x1b[1;32mgreen\x1b[0m ok\r\n'), 'green ok\n');
  assert.equal(plainText('progress 10%\rprogress 100%\n'), 'progress 100%\n');
  assert.equal(plainText('\x1b]0;title\x07$ ls\x1b[?2004h'), '$ ls');
});

test('a long output keeps its last lines and stays under the limit', () => {
  const raw = Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\r\n');
  const post = threadPost('**running**', raw);
  assert.ok(post.length <= DISCORD_MAX_CHARS, `${post.length} characters`);
  assert.match(post, /line 499\n```$/);
  assert.doesNotMatch(post, /line 0\n/);
  assert.equal(fences(post), 2);
});

test('code fences in the output cannot close the block early', () => {
  const raw = 'before\n```js\nconsole.log(1)\n```\nafter ````` end';
  const block = tailBlock(raw, 200);
  assert.equal(fences(block), 2, block);
  assert.ok(block.startsWith('```\n') && block.endsWith('\n```'));
  assert.match(block, /console\.log\(1\)/);
});

test('one huge line keeps its end; empty output gives no block', () => {
  const block = tailBlock(`${'x'.repeat(5000)}END`, 500);
  assert.ok(block.length <= 500);
  assert.match(block, /END\n```$/);
  assert.equal(tailBlock('\x1b[0m\r\n', 100), '');
  assert.equal(threadPost('**suspended**', ''), '**suspended**');
});
