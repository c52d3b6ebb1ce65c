/**
 * The forge route's rules, without a network: the pkt-line reader of receive-pack's ref updates
 * (hostile input: bounded, never fooled), the refusal report, the path parser and the allowlist.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../common/config.js';
import {
  guestGitRewrite,
  guestRemoteUrl,
  isValidAllowEntry,
  parseForgePath,
  repoAllowed,
} from '../../vm/egress/forge.js';
import {
  FLUSH,
  isValidBranchName,
  PKT_MAX,
  parseReceivePackHead,
  pkt,
  refusedPushReport,
} from '../../vm/egress/pkt-line.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);
const caps = 'report-status side-band-64k object-format=sha1 agent=git/2.39.5';

function push(cmds: string[], withCaps = true): Buffer {
  return Buffer.concat([
    ...cmds.map((c, i) => pkt(i === 0 && withCaps ? `${c}\0${caps}\n` : `${c}\n`)),
    FLUSH,
    Buffer.from('PACK\0\0\0\x02'),
  ]);
}

test('reads the ref updates and capabilities of a real push, and where they end', () => {
  const body = push([`${A} ${B} refs/heads/lia/t_1`, `${Z} ${B} refs/heads/other`]);
  const r = parseReceivePackHead(body);
  assert.equal(r.kind, 'done');
  if (r.kind !== 'done') return;
  assert.deepEqual(
    r.commands.map((c) => c.ref),
    ['refs/heads/lia/t_1', 'refs/heads/other'],
  );
  assert.deepEqual(r.capabilities.slice(0, 2), ['report-status', 'side-band-64k']);
  assert.equal(body.subarray(r.headLength).toString('latin1', 0, 4), 'PACK');
});

test("git's probe before a large push: a flush alone, no ref update", () => {
  const r = parseReceivePackHead(FLUSH);
  assert.deepEqual(r, { kind: 'done', commands: [], capabilities: [], headLength: 4 });
});

test('sha256 ids, shallow lines, a command without a newline', () => {
  const a = 'c'.repeat(64);
  const body = Buffer.concat([pkt(`shallow ${A}\n`), pkt(`${a} ${a} refs/heads/x\0report-status`), FLUSH]);
  const r = parseReceivePackHead(body);
  assert.equal(r.kind, 'done');
});

test('asks for more bytes until the flush arrives, at every cut', () => {
  const body = push([`${A} ${B} refs/heads/lia/t_1`]);
  const end = (parseReceivePackHead(body) as { headLength: number }).headLength;
  for (let i = 0; i < end; i++)
    assert.equal(parseReceivePackHead(body.subarray(0, i)).kind, 'more', `cut at ${i}`);
});

test('refuses garbage, odd lengths, oversized lines and too many updates', () => {
  const bad = (b: Buffer, why: RegExp) => {
    const r = parseReceivePackHead(b);
    assert.equal(r.kind, 'bad', `${b.toString('latin1', 0, 40)} → ${r.kind}`);
    if (r.kind === 'bad') assert.match(r.message, why);
  };
  bad(Buffer.from('GET / HTTP/1.1\r\n'), /pkt-lines/);
  bad(Buffer.from('zzzz'), /pkt-lines/);
  bad(Buffer.from('0003'), /length 3/);
  bad(Buffer.from('0001'), /length 1/);
  bad(Buffer.from('ffff'), /longer than git allows/);
  bad(Buffer.from(`${(PKT_MAX + 1).toString(16)}`), /longer than git allows/);
  bad(Buffer.concat([pkt('hello world\n'), FLUSH]), /not "<old> <new> <ref>"/);
  bad(Buffer.concat([pkt(`${A} ${B}\n`), FLUSH]), /not "<old> <new> <ref>"/);
  bad(Buffer.concat([pkt(`${A} xyz refs/heads/a\n`), FLUSH]), /object ids/);
  bad(Buffer.concat([pkt(`${A} ${'c'.repeat(64)} refs/heads/a\n`), FLUSH]), /object ids/);
  bad(Buffer.concat([pkt(`${A} ${B} refs/heads/../main\n`), FLUSH]), /valid ref name/);
  bad(Buffer.concat([pkt(`${A} ${B} HEAD\n`), FLUSH]), /valid ref name/);
  bad(
    Buffer.concat([pkt(`${A} ${B} refs/heads/a\n`), pkt(`${A} ${B} refs/heads/b\0caps\n`), FLUSH]),
    /capabilities after/,
  );
  bad(Buffer.concat([pkt(`push-cert\0${caps}\n`), FLUSH]), /signed pushes/);
  bad(Buffer.concat([pkt(`${A} ${B} refs/heads/a\n`), pkt(`shallow ${A}\n`), FLUSH]), /shallow line after/);
  const many = Array.from({ length: 65 }, (_, i) => `${A} ${B} refs/heads/b${i}`);
  bad(push(many), /at most 64 refs/);
});

test('never holds more than the head limit: a stream of valid lines with no flush is refused', () => {
  const line = pkt(`${A} ${B} refs/heads/${'x'.repeat(900)}\n`);
  const limits = { maxHeadBytes: 64 * 1024, maxCommands: 10_000 };
  let buf = Buffer.alloc(0);
  let r = parseReceivePackHead(buf, limits);
  let rounds = 0;
  while (r.kind === 'more') {
    buf = Buffer.concat([buf, line]);
    r = parseReceivePackHead(buf, limits);
    rounds++;
    assert.ok(buf.length < limits.maxHeadBytes + 2 * line.length, 'held past the limit');
  }
  assert.equal(r.kind, 'bad');
  assert.ok(rounds < 80);
  // One line announcing a length past what is held: refused at once, not waited for.
  assert.equal(parseReceivePackHead(Buffer.from('fff0'), { maxHeadBytes: 1024, maxCommands: 1 }).kind, 'bad');
});

test('the refusal report is what git reads: side-band 2 message, band 1 report-status', () => {
  const out = refusedPushReport(
    ['report-status', 'side-band-64k'],
    [{ ref: 'refs/heads/main', reason: 'Lia: no\nway' }],
    'Lia: only lia/t_1',
  );
  const text = out.toString('latin1');
  // Band 2 (progress: git prints "remote: …"), then band 1 carrying the report.
  assert.ok(text.startsWith(`${'0017'}\u0002Lia: only lia/t_1\n`), JSON.stringify(text));
  assert.ok(
    text.includes('\u0001000eunpack ok\n0023ng refs/heads/main Lia: no way\n0000'),
    JSON.stringify(text),
  );
  assert.ok(text.endsWith('0000'));
  const plain = refusedPushReport(
    ['report-status'],
    [{ ref: 'refs/heads/main', reason: 'x' }],
    'm',
  ).toString();
  assert.equal(plain, '000eunpack ok\n0019ng refs/heads/main x\n0000');
});

test('branch names', () => {
  for (const ok of ['lia/t_abc', 'main', 'feature/x-1.2']) assert.ok(isValidBranchName(ok), ok);
  for (const no of ['', '/x', 'a..b', 'a b', 'x.lock', 'a/', 'a~1', 'a^', 'a:b', 'a\\b', '@{x}', 'a//b'])
    assert.ok(!isValidBranchName(no), no);
});

test('forge paths: only smart HTTP of owner/repo, compared as sent', () => {
  const ok = parseForgePath('GET', '/forge/acme/widgets.git/info/refs?service=git-upload-pack');
  assert.deepEqual(ok, {
    ok: true,
    owner: 'acme',
    repo: 'widgets',
    route: 'upload-pack-refs',
    upstreamPath: '/acme/widgets.git/info/refs?service=git-upload-pack',
  });
  assert.equal(
    (parseForgePath('POST', '/forge/acme/widgets/git-receive-pack') as { route: string }).route,
    'receive-pack',
  );
  for (const [m, u] of [
    ['GET', '/forge/acme/widgets.git/HEAD'],
    ['GET', '/forge/acme/widgets.git/objects/info/packs'],
    ['GET', '/forge/acme/widgets.git/info/refs'],
    ['GET', '/forge/acme/widgets.git/info/refs?service=git-upload-pack&x=1'],
    ['POST', '/forge/acme/widgets.git/git-upload-pack?x=1'],
    ['GET', '/forge/acme/widgets.git/git-upload-pack'],
    ['PUT', '/forge/acme/widgets.git/git-receive-pack'],
    ['GET', '/forge/acme/%2e%2e/info/refs?service=git-upload-pack'],
    ['GET', '/forge/acme/../info/refs?service=git-upload-pack'],
    ['GET', '/forge/acme/widgets.git/../other.git/info/refs?service=git-upload-pack'],
    ['POST', '/forge/repos/acme/widgets/pulls'],
    ['GET', '/forge/acme/widgets'],
    ['GET', '/forge/-x/widgets.git/info/refs?service=git-upload-pack'],
  ] as const) {
    assert.equal(parseForgePath(m, u).ok, false, `${m} ${u}`);
  }
});

test('the repository allowlist', () => {
  assert.ok(repoAllowed(['acme/widgets'], 'acme', 'widgets'));
  assert.ok(repoAllowed(['acme/*'], 'ACME', 'anything'));
  assert.ok(!repoAllowed(['acme/widgets'], 'acme', 'gadgets'));
  assert.ok(!repoAllowed(['acme/*'], 'evil', 'widgets'));
  assert.ok(!repoAllowed([], 'acme', 'widgets'));
  for (const ok of ['acme/widgets', 'acme/*', 'a-b/c.d_e']) assert.ok(isValidAllowEntry(ok), ok);
  for (const no of ['acme', 'acme/', '*/*', 'acme/w/x', 'https://github.com/acme/w', 'acme/..']) {
    assert.ok(!isValidAllowEntry(no), no);
  }
});

test('LIA__FORGE__*: validated at start, the token never echoed', () => {
  const c = loadConfig({
    LIA__FORGE__TOKEN: 'ghp_secretsecretsecret',
    LIA__FORGE__ALLOW_REPOS: 'acme/widgets, acme/*',
  });
  assert.deepEqual(c.forge.allow_repos, ['acme/widgets', 'acme/*']);
  assert.equal(c.forge.api_url, 'https://api.github.com');
  assert.equal(c.forge.git_url, 'https://github.com');
  assert.equal(c.forge.kind, 'github');
  for (const [name, value, why] of [
    ['LIA__FORGE__ALLOW_REPOS', 'acme', /owner\/name or owner\/\*/],
    ['LIA__FORGE__ALLOW_REPOS', 'https://github.com/acme/w', /owner\/name or owner\/\*/],
    ['LIA__FORGE__KIND', 'gitlab', /github/],
    ['LIA__FORGE__GIT_URL', 'ftp://x', /http\(s\)/],
  ] as const) {
    assert.throws(
      () => loadConfig({ [name]: value, LIA__FORGE__TOKEN: 'ghp_secretsecretsecret' }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes(name) &&
        why.test(e.message) &&
        !e.message.includes('ghp_secret'),
      `${name}=${value}`,
    );
  }
});

test("the guest's git rewrite and remote URL", () => {
  assert.deepEqual(guestGitRewrite('https://github.com'), {
    key: 'url.http://127.0.0.1:3128/forge/.insteadOf',
    value: 'https://github.com/',
  });
  assert.equal(guestGitRewrite('https://ghe.example/', 'http://127.0.0.1:9/').value, 'https://ghe.example/');
  assert.equal(
    guestRemoteUrl('https://github.com/', 'acme', 'widgets'),
    'https://github.com/acme/widgets.git',
  );
});
