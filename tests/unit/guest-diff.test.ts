/**
 * A diff from the guest is hostile input (issue 20): the host takes only a JSON document within
 * the limits — any other shape is refused with the reason, and nothing of it is stored.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuestDiff } from '../../activities/forge/diff.js';
import { DIFF_LIMITS, diffStat, diffStatText } from '../../common/diff.js';
import { parseNumstat } from '../../vm/sidecar/diff.js';

const SHA = 'a'.repeat(40);
const good = {
  base: SHA,
  head: 'b'.repeat(40),
  files: [
    { path: 'README.md', added: 3, deleted: 1 },
    { path: 'logo.png', added: null, deleted: null },
    { path: 'src/new.ts', from: 'src/old.ts', added: 0, deleted: 0 },
  ],
  moreFiles: 2,
  patch: 'diff --git a/README.md b/README.md\n',
  truncated: false,
};
const body = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

test('a well-formed diff is taken, and its stat counts the files beyond the list', () => {
  const r = parseGuestDiff(body(good));
  assert.ok('doc' in r, JSON.stringify(r));
  assert.deepEqual(diffStat(r.doc), { files: 5, added: 3, deleted: 1 });
  assert.equal(diffStatText(diffStat(r.doc)), '5 files changed, +3 −1');
  assert.equal(diffStatText({ files: 0, added: 0, deleted: 0 }), 'no changes');
});

test('hostile diffs are refused with the reason', () => {
  const cases: [unknown, RegExp][] = [
    ['{"base": ', /not JSON/],
    [[1, 2], /root/],
    [{ ...good, base: 'HEAD; rm -rf /' }, /base/],
    [{ ...good, head: 'x'.repeat(40) }, /head/],
    [{ ...good, files: [{ path: '', added: 1, deleted: 0 }] }, /files\.0\.path/],
    [{ ...good, files: [{ path: 'a', added: -1, deleted: 0 }] }, /files\.0\.added/],
    [{ ...good, files: [{ path: 'a', added: 1.5, deleted: 0 }] }, /files\.0\.added/],
    [{ ...good, files: [{ path: 'a', added: '9', deleted: 0 }] }, /files\.0\.added/],
    [
      { ...good, files: [{ path: 'p'.repeat(DIFF_LIMITS.path + 1), added: 1, deleted: 0 }] },
      /files\.0\.path/,
    ],
    [
      {
        ...good,
        files: Array.from({ length: DIFF_LIMITS.files + 1 }, (_, i) => ({
          path: `f${i}`,
          added: 1,
          deleted: 0,
        })),
      },
      /files/,
    ],
    [{ ...good, moreFiles: -3 }, /moreFiles/],
    [{ ...good, patch: 'x'.repeat(DIFF_LIMITS.patchBytes + 1) }, /patch/],
    [{ ...good, patch: 42 }, /patch/],
    [{ ...good, truncated: 'no' }, /truncated/],
  ];
  for (const [v, re] of cases) {
    const r = parseGuestDiff(body(v));
    assert.ok('error' in r, `taken: ${JSON.stringify(v).slice(0, 80)}`);
    assert.match(r.error, re);
  }
});

test("git's numstat records: counts, binaries, renames, odd names", () => {
  const raw = Buffer.from(
    [
      '3\t1\tREADME.md',
      '-\t-\tlogo.png',
      '0\t0\t',
      'src/old.ts',
      'src/new.ts',
      '1\t0\tname with\ttab\nand newline',
      'garbage',
      '',
    ].join('\0'),
  );
  assert.deepEqual(parseNumstat(raw), [
    { path: 'README.md', added: 3, deleted: 1 },
    { path: 'logo.png', added: null, deleted: null },
    { path: 'src/new.ts', from: 'src/old.ts', added: 0, deleted: 0 },
    { path: 'name with\ttab\nand newline', added: 1, deleted: 0 },
  ]);
});
