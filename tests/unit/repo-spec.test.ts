/** A spawn's repository (issue 20): how it is named, checked against the allowlist, refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repoMessage } from '../../activities/forge/task-repo.js';
import { loadConfig } from '../../common/config.js';
import { isValidBranch, parseRepo, resolveRepo, taskBranch } from '../../common/repo.js';

const GH = 'https://github.com';
const forge = { git_url: GH, token: 'ghs_x', allow_repos: ['acme/widgets', 'tools/*'] };

test('owner/name, https URLs (with .git or a trailing slash) and host/owner/name are one repository', () => {
  for (const s of [
    'acme/widgets',
    'https://github.com/acme/widgets',
    'https://github.com/acme/widgets.git',
    'https://github.com/acme/widgets/',
    'github.com/acme/widgets',
    '  acme/widgets  ',
  ])
    assert.deepEqual(parseRepo(s, GH), { owner: 'acme', repo: 'widgets' }, s);
});

test('other hosts, paths and names are refused with what to fix', () => {
  assert.match(String(parseRepo('https://gitlab.com/acme/widgets', GH)), /must be on github\.com/);
  assert.match(String(parseRepo('acme', GH)), /give owner\/name/);
  assert.match(String(parseRepo('acme/widgets/tree/main', GH)), /give owner\/name/);
  assert.match(String(parseRepo('-acme/widgets', GH)), /not a valid owner\/name/);
  assert.match(String(parseRepo('acme/..', GH)), /not a valid owner\/name/);
  assert.match(String(parseRepo('https://[bad', GH)), /not a valid URL/);
});

test('the allowlist (owner/name, owner/*; case-insensitive) and no forge at all', () => {
  assert.deepEqual(resolveRepo({ repo: 'Acme/Widgets' }, forge), { owner: 'Acme', repo: 'Widgets' });
  assert.deepEqual(resolveRepo({ repo: 'tools/anything', branch: 'dev' }, forge), {
    owner: 'tools',
    repo: 'anything',
    base: 'dev',
  });
  assert.match(String(resolveRepo({ repo: 'acme/gadgets' }, forge)), /not on this Lia's allowlist/);
  assert.match(
    String(resolveRepo({ repo: 'acme/widgets' }, { ...forge, token: undefined })),
    /no forge is configured/,
  );
  assert.match(String(resolveRepo({ repo: 'acme/widgets' }, { ...forge, allow_repos: [] })), /is empty/);
  assert.match(String(resolveRepo({ repo: 'acme/widgets', branch: '../x' }, forge)), /not a valid branch/);
});

test('branch names', () => {
  for (const ok of ['main', 'release/1.2', 'feature_x-y']) assert.ok(isValidBranch(ok), ok);
  for (const bad of ['', '-x', '.x', 'a..b', 'a//b', 'a/', 'x.lock', 'a@{1}', 'a b', 'a;b', 'a\nb'])
    assert.ok(!isValidBranch(bad), JSON.stringify(bad));
  assert.equal(taskBranch('t_abcdefg234'), 'lia/t_abcdefg234');
});

test("the sidecar's repo message: the forge's own URL (no credential), the rewrite to the guest endpoint", () => {
  const config = loadConfig({ LIA__FORGE__TOKEN: 'ghs_SECRET_never_in_the_message' });
  const m = repoMessage(
    config,
    't_abcdefg234',
    { owner: 'acme', repo: 'widgets', base: 'dev' },
    {
      HTTP_PROXY: 'http://127.0.0.1:3128',
    },
  );
  assert.deepEqual(m, {
    type: 'repo',
    url: 'https://github.com/acme/widgets.git',
    base: 'dev',
    branch: 'lia/t_abcdefg234',
    dir: 'widgets',
    rewrite: { key: 'url.http://127.0.0.1:3128/forge/.insteadOf', value: 'https://github.com/' },
  });
  assert.ok(!JSON.stringify(m).includes('ghs_SECRET'));
});
