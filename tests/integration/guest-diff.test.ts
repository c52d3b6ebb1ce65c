/**
 * The guest's side of the diff (issue 20), with the real git: what the sidecar gives for a
 * checkout — the working tree (uncommitted and untracked files too, .gitignore honoured) against
 * the commit the task's branch started from — leaving the agent's own index as it was, and within
 * the limits the host enforces whatever the tree holds (huge files, control bytes, many files).
 * And the push's "nothing to push" when the branch is where it started.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseGuestDiff } from '../../activities/forge/diff.js';
import { DIFF_LIMITS, diffStat, type GuestDiff } from '../../common/diff.js';
import { workingDiff } from '../../vm/sidecar/diff.js';
import { commitAndPush } from '../../vm/sidecar/repo.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-guest-diff-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, HOME: cwd } });
  assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** A checkout as the sidecar leaves it: a clone on lia/<task>, its base recorded. */
function checkout(name: string, files: Record<string, string | Buffer>): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 't@example.invalid');
  git(dir, 'config', 'user.name', 'T');
  for (const [f, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), data);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'base');
  git(dir, 'checkout', '-qb', 'lia/t_test');
  git(dir, 'config', 'lia.base', git(dir, 'rev-parse', 'HEAD'));
  return dir;
}

async function diffOf(dir: string): Promise<GuestDiff> {
  const r = await workingDiff(dir, undefined);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.ok(r.body.length <= DIFF_LIMITS.bodyBytes, `body ${r.body.length} bytes`);
  const parsed = parseGuestDiff(r.body);
  assert.ok('doc' in parsed, 'error' in parsed ? parsed.error : '');
  return parsed.doc;
}

test('committed, uncommitted, untracked, deleted, renamed and binary changes; ignored files left out', async () => {
  const dir = checkout('mixed', {
    'README.md': '# widgets\n',
    'src/a.ts': 'export const a = 1;\n',
    'src/gone.txt': 'bye\n',
    'docs/long.md': `${'a line that makes the rename detectable\n'.repeat(20)}`,
    '.gitignore': 'build/\n',
  });
  // A commit of the agent's, then work it has not committed.
  fs.appendFileSync(path.join(dir, 'README.md'), 'committed line\n');
  git(dir, 'commit', '-qam', 'agent commit');
  fs.writeFileSync(path.join(dir, 'src/a.ts'), 'export const a = 2;\n/* a comment\n   over lines */\n');
  fs.rmSync(path.join(dir, 'src/gone.txt'));
  git(dir, 'mv', 'docs/long.md', 'docs/moved.md');
  fs.writeFileSync(path.join(dir, 'new.txt'), 'untracked\n');
  fs.writeFileSync(path.join(dir, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 0]));
  fs.mkdirSync(path.join(dir, 'build'));
  fs.writeFileSync(path.join(dir, 'build/out.js'), 'ignored\n');
  // What the agent staged stays exactly as it was staged.
  const stagedBefore = git(dir, 'diff', '--cached', '--name-status');

  const d = await diffOf(dir);
  const byPath = new Map(d.files.map((f) => [f.path, f]));
  assert.deepEqual(byPath.get('README.md'), { path: 'README.md', added: 1, deleted: 0 });
  assert.deepEqual(byPath.get('src/a.ts'), { path: 'src/a.ts', added: 3, deleted: 1 });
  assert.deepEqual(byPath.get('src/gone.txt'), { path: 'src/gone.txt', added: 0, deleted: 1 });
  assert.deepEqual(byPath.get('docs/moved.md'), {
    path: 'docs/moved.md',
    from: 'docs/long.md',
    added: 0,
    deleted: 0,
  });
  assert.deepEqual(byPath.get('new.txt'), { path: 'new.txt', added: 1, deleted: 0 });
  assert.deepEqual(byPath.get('logo.png'), { path: 'logo.png', added: null, deleted: null });
  assert.ok(!byPath.has('build/out.js'), 'an ignored file is not in the diff');
  assert.equal(d.files.length, 6);
  assert.equal(d.base, git(dir, 'config', 'lia.base'));
  assert.equal(d.head, git(dir, 'rev-parse', 'HEAD'));
  assert.match(d.patch, /^\+committed line$/m);
  assert.match(d.patch, /^\+export const a = 2;$/m);
  assert.match(d.patch, /^rename from docs\/long\.md$/m);
  assert.match(d.patch, /^Binary files \/dev\/null and b\/logo\.png differ$/m);
  assert.equal(d.truncated, false);
  assert.deepEqual(diffStat(d), { files: 6, added: 5, deleted: 2 });
  assert.equal(git(dir, 'diff', '--cached', '--name-status'), stagedBefore, "the agent's index is untouched");
  assert.match(git(dir, 'status', '--porcelain'), /^\?\? new\.txt$/m, 'untracked files stay untracked');
  assert.deepEqual(
    fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('lia-diff-')),
    [],
    'the scratch index is removed',
  );
});

test('a huge change is cut at a line within the limit; control bytes still fit the frame', async () => {
  const dir = checkout('huge', { 'a.txt': 'x\n' });
  // Lines of control bytes: JSON writes each as \u00XX, six bytes for one.
  const line = `${'\x01\x02\x1b'.repeat(100)}\n`;
  fs.writeFileSync(path.join(dir, 'a.txt'), line.repeat(6000));
  fs.writeFileSync(path.join(dir, 'b.txt'), 'ok\n'.repeat(200_000));
  const d = await diffOf(dir);
  assert.equal(d.truncated, true);
  assert.ok(d.patch.endsWith('\n'), 'cut at a whole line');
  assert.ok(Buffer.byteLength(d.patch) <= DIFF_LIMITS.patchBytes);
  // The counts are whole even where the patch is cut.
  assert.deepEqual(
    d.files.map((f) => [f.path, f.added]),
    [
      ['a.txt', 6000],
      ['b.txt', 200_000],
    ],
  );
});

test('more files than the list holds: the rest are counted', async () => {
  const dir = checkout('many', { 'keep.txt': 'k\n' });
  fs.mkdirSync(path.join(dir, 'gen'));
  for (let i = 0; i < DIFF_LIMITS.files + 150; i++)
    fs.writeFileSync(path.join(dir, 'gen', `f${i}.txt`), `${i}\n`);
  const d = await diffOf(dir);
  assert.equal(d.files.length, DIFF_LIMITS.files);
  assert.equal(d.moreFiles, 150);
  assert.equal(diffStat(d).files, DIFF_LIMITS.files + 150);
});

test('no checkout, or no commit: said, not thrown', async () => {
  const none = await workingDiff(undefined, undefined);
  assert.deepEqual(none, { ok: false, error: 'this task has no checkout of its repository' });
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  git(empty, 'init', '-q');
  const r = await workingDiff(empty, undefined);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.error, /git rev-parse HEAD failed/);
});

test('a push when the branch is where it started: nothing pushed, said as empty', async () => {
  const dir = checkout('unchanged', { 'a.txt': 'a\n' });
  const r = await commitAndPush(
    { type: 'git', id: 1, op: 'push', branch: 'lia/t_test', message: 'm' },
    dir,
    undefined,
  );
  assert.equal(r.ok, true);
  assert.equal(r.empty, true);
  assert.match(r.output, /no commit beyond its base/);
});
