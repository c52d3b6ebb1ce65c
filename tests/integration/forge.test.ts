/**
 * The coding loop's forge path, host side, with the real git client acting as the guest: it
 * talks plain HTTP to the egress proxy's listener for its task (a git `insteadOf` rewrite of
 * https://github.com/, as the guest's git config has it), and the proxy forwards to a forge
 * stand-in running the real `git http-backend`, with the host's token added. Then the host's
 * pull-request client (Octokit) against the same stand-in.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  ForgeClient,
  ForgeError,
  openTaskPullRequest,
  pullRequestBody,
} from '../../activities/forge/pull-request.js';
import { forgeLoginOf } from '../../common/repo.js';
import { guestGitRewrite, guestRemoteUrl } from '../../vm/egress/forge.js';
import { FLUSH, pkt } from '../../vm/egress/pkt-line.js';
import { EgressProxy } from '../../vm/egress/proxy.js';
import { guestConnection } from '../helpers/egress.js';
import { type ForgeStandin, startForgeStandin } from '../standins/forge/forge-standin.js';

const TOKEN = 'ghs_HostOnlyForgeToken0123456789abcdef';
const READ_ONLY = 'ghs_ReadOnlyToken0123456789abcdef';
const BASIC = `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`;
let forge: ForgeStandin;
let proxy: EgressProxy;
let port = 0;
let home = '';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-forge-guest-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real git client, as a guest with the rewrite to its proxy endpoint and no credential. */
function git(args: string[], cwd = work, gitHome = home): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd,
        timeout: 60_000,
        env: {
          PATH: process.env.PATH,
          HOME: gitHome,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          GIT_ASKPASS: '/bin/false',
          GIT_AUTHOR_NAME: 'Agent',
          GIT_AUTHOR_EMAIL: 'agent@guest.invalid',
          GIT_COMMITTER_NAME: 'Agent',
          GIT_COMMITTER_EMAIL: 'agent@guest.invalid',
          LC_ALL: 'C',
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function guestHome(proxyPort: number): string {
  const h = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-forge-home-'));
  // What the guest's sidecar will set: the forge's URL rewritten to its proxy endpoint.
  const { key, value } = guestGitRewrite('https://github.com', `http://127.0.0.1:${proxyPort}`);
  const [section, sub, name] = [
    key.slice(0, 3),
    key.slice(4, key.lastIndexOf('.')),
    key.slice(key.lastIndexOf('.') + 1),
  ];
  fs.writeFileSync(path.join(h, '.gitconfig'), `[${section} "${sub}"]\n\t${name} = ${value}\n`);
  return h;
}

function grepTree(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) hits.push(...grepTree(p, needle));
    else if (e.isFile() && fs.readFileSync(p).includes(needle)) hits.push(p);
  }
  return hits;
}

/** A raw request to the proxy as a guest: what comes back, and how much of the body was taken. */
function raw(
  p: number,
  head: string,
  body: (sock: net.Socket) => void,
): Promise<{ response: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(p, '127.0.0.1');
    let response = '';
    sock.on('data', (d) => {
      response += d.toString('latin1');
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve({ response, closedAfterMs: Date.now() - started }));
    sock.write(head);
    body(sock);
  });
}

before(async () => {
  forge = await startForgeStandin({
    [TOKEN]: { repos: '*', write: true, login: 'lia-app' },
    [READ_ONLY]: { repos: '*', write: false },
  });
  forge.createRepo('acme', 'widgets', { 'README.md': '# widgets\n', 'src/a.txt': 'one\n' });
  forge.createRepo('acme', 'gadgets', { 'SECRET.md': 'not for t_1\n' });
  proxy = new EgressProxy({
    modelBaseUrl: 'http://127.0.0.1:9',
    apiKey: 'sk-ant-unused',
    allowHosts: [],
    forge: { kind: 'github', gitUrl: forge.gitUrl, token: TOKEN, allowRepos: ['acme/*'] },
  });
  proxy.setTaskRepo('t_one', { owner: 'acme', repo: 'widgets', branch: 'lia/t_one', base: 'main' });
  proxy.setTaskRepo('t_two', { owner: 'acme', repo: 'gadgets', branch: 'lia/t_two', base: 'main' });
  port = await proxy.open('t_one');
  home = guestHome(port);
});

after(async () => {
  await proxy.closeAll();
  await forge.close();
  fs.rmSync(work, { recursive: true, force: true });
});

test('setTaskRepo refuses repositories off the allowlist and odd names', () => {
  assert.throws(
    () => proxy.setTaskRepo('t_x', { owner: 'evil', repo: 'x', branch: 'lia/t_x' }),
    /ALLOW_REPOS/,
  );
  assert.throws(
    () => proxy.setTaskRepo('t_x', { owner: 'acme', repo: '..', branch: 'lia/t_x' }),
    /not a repository/,
  );
  assert.throws(() => proxy.setTaskRepo('t_x', { owner: 'acme', repo: 'w', branch: 'a..b' }), /not a branch/);
  const none = new EgressProxy({ modelBaseUrl: 'http://127.0.0.1:9', apiKey: undefined, allowHosts: [] });
  assert.throws(() => none.setTaskRepo('t_x', { owner: 'acme', repo: 'w', branch: 'lia/t_x' }), /no forge/);
});

test("the guest clones its task's repository through the proxy; no credential lands in the clone", async () => {
  const r = await git(['clone', guestRemoteUrl('https://github.com', 'acme', 'widgets'), 'widgets']);
  assert.equal(r.code, 0, r.stderr);
  const dir = path.join(work, 'widgets');
  assert.equal(fs.readFileSync(path.join(dir, 'src/a.txt'), 'utf8'), 'one\n');
  const config = fs.readFileSync(path.join(dir, '.git/config'), 'utf8');
  assert.match(config, /url = https:\/\/github.com\/acme\/widgets.git/);
  assert.deepEqual(grepTree(dir, TOKEN), []);
  assert.deepEqual(grepTree(dir, Buffer.from(`x-access-token:${TOKEN}`).toString('base64')), []);
  assert.deepEqual(grepTree(home, TOKEN), []);
  // Every git request reached the forge with the host's credential, and only with it.
  const gitReqs = forge.requests.filter((q) => q.path.startsWith('/acme/'));
  assert.ok(gitReqs.length >= 2);
  for (const q of gitReqs) assert.equal(q.authorization, BASIC);
});

test("another repository (another task's, too) is refused, and git shows why", async () => {
  const r = await git(['clone', 'https://github.com/acme/gadgets.git', 'gadgets']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /remote: Lia: this task may only use acme\/widgets; acme\/gadgets was refused/);
  assert.match(r.stderr, /returned error: 403/);
  assert.ok(!fs.existsSync(path.join(work, 'gadgets', 'SECRET.md')));
  const r2 = await git(['ls-remote', 'https://github.com/someone/else.git']);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /remote: Lia: this task may only use acme\/widgets/);
  assert.ok(!forge.requests.some((q) => q.path.includes('gadgets') || q.path.includes('someone')));
});

test('a push to the task branch lands in the forge; to main, a tag or a deletion is refused with the reason', async () => {
  const dir = path.join(work, 'widgets');
  assert.equal((await git(['checkout', '-q', '-b', 'lia/t_one'], dir)).code, 0);
  fs.writeFileSync(path.join(dir, 'src/a.txt'), 'one\ntwo\n');
  assert.equal((await git(['commit', '-qam', 'agent: two'], dir)).code, 0);
  const head = (await git(['rev-parse', 'HEAD'], dir)).stdout.trim();
  const mainBefore = forge.branchSha('acme', 'widgets', 'main');

  const ok = await git(['push', 'origin', 'lia/t_one'], dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /\* \[new branch\]\s+lia\/t_one -> lia\/t_one/);
  assert.equal(forge.branchSha('acme', 'widgets', 'lia/t_one'), head);

  const main = await git(['push', 'origin', 'HEAD:main'], dir);
  assert.notEqual(main.code, 0);
  assert.match(main.stderr, /remote: Lia: this task may push only to its own branch lia\/t_one/);
  assert.match(
    main.stderr,
    /! \[remote rejected\] HEAD -> main \(Lia: this task may push only to refs\/heads\/lia\/t_one\)/,
  );
  assert.equal(forge.branchSha('acme', 'widgets', 'main'), mainBefore);

  // A push naming the task branch and another ref is refused as a whole.
  fs.writeFileSync(path.join(dir, 'src/a.txt'), 'one\ntwo\nthree\n');
  await git(['commit', '-qam', 'agent: three'], dir);
  const both = await git(['push', 'origin', 'HEAD:lia/t_one', 'HEAD:refs/heads/other'], dir);
  assert.notEqual(both.code, 0);
  assert.match(
    both.stderr,
    /! \[remote rejected\] HEAD -> lia\/t_one \(Lia: the push was refused as a whole/,
  );
  assert.match(both.stderr, /! \[remote rejected\] HEAD -> other \(Lia: this task may push only/);
  assert.equal(forge.branchSha('acme', 'widgets', 'lia/t_one'), head);
  assert.equal(forge.branchSha('acme', 'widgets', 'other'), undefined);

  const tag = await git(['push', 'origin', 'HEAD:refs/tags/v1'], dir);
  assert.match(tag.stderr, /! \[remote rejected\]/);
  const del = await git(['push', 'origin', ':lia/t_one'], dir);
  assert.notEqual(del.code, 0);
  assert.match(del.stderr, /Lia: this task may not delete its branch/);
  assert.equal(forge.branchSha('acme', 'widgets', 'lia/t_one'), head);

  // A force push to its own branch is its own business.
  const again = await git(['push', 'origin', 'HEAD:lia/t_one'], dir);
  assert.equal(again.code, 0, again.stderr);
});

test("a large push (chunked, past git's post buffer) streams through to the task branch", async () => {
  const dir = path.join(work, 'widgets');
  fs.writeFileSync(path.join(dir, 'blob.bin'), crypto.randomBytes(3 * 1024 * 1024));
  assert.equal((await git(['add', 'blob.bin'], dir)).code, 0);
  assert.equal((await git(['commit', '-qm', 'agent: a large file'], dir)).code, 0);
  const head = (await git(['rev-parse', 'HEAD'], dir)).stdout.trim();
  const r = await git(['push', 'origin', 'HEAD:lia/t_one'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(forge.branchSha('acme', 'widgets', 'lia/t_one'), head);
});

test("the guest's own credentials are dropped, and no challenge or credential comes back", async () => {
  const before = forge.requests.length;
  const res = await fetch(
    `http://127.0.0.1:${port}/forge/acme/widgets.git/info/refs?service=git-upload-pack`,
    {
      headers: { authorization: 'Basic Z3Vlc3Q6Z3Vlc3QtdG9rZW4=', cookie: 'a=b' },
    },
  );
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  assert.ok(!body.includes(TOKEN));
  for (const h of ['authorization', 'www-authenticate', 'set-cookie']) assert.equal(res.headers.get(h), null);
  const seen = forge.requests.slice(before);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.authorization, BASIC);
});

test('a host token the forge refuses: git gets a 502 that names the operator, never a challenge', async () => {
  const bad = new EgressProxy({
    modelBaseUrl: 'http://127.0.0.1:9',
    apiKey: undefined,
    allowHosts: [],
    forge: { kind: 'github', gitUrl: forge.gitUrl, token: 'ghs_wrong', allowRepos: ['acme/widgets'] },
  });
  bad.setTaskRepo('t_bad', { owner: 'acme', repo: 'widgets', branch: 'lia/t_bad' });
  const p = await bad.open('t_bad');
  try {
    const r = await git(['ls-remote', 'https://github.com/acme/widgets.git'], work, guestHome(p));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /remote: Lia: the forge refused the host's credential/);
    assert.doesNotMatch(r.stderr, /Username|terminal prompts/);
  } finally {
    await bad.closeAll();
  }
});

test('the same over the VM channel path (accept): discovery works, another repository is refused', async () => {
  const ask = (url: string) =>
    new Promise<string>((resolve) => {
      const conn = guestConnection(proxy, 't_one');
      let got = '';
      conn.on('data', (d: Buffer) => {
        got += d.toString('latin1');
      });
      conn.on('end', () => resolve(got));
      conn.on('close', () => resolve(got));
      conn.write(
        `GET ${url} HTTP/1.1\r\nhost: 127.0.0.1:3128\r\nauthorization: Basic Z3Vlc3Q6eA==\r\nconnection: close\r\n\r\n`,
      );
    });
  const ok = await ask('/forge/acme/widgets.git/info/refs?service=git-upload-pack');
  assert.match(ok, /^HTTP\/1.1 200/);
  assert.match(ok, /# service=git-upload-pack/);
  assert.ok(!ok.includes(TOKEN));
  const no = await ask('/forge/acme/gadgets.git/info/refs?service=git-upload-pack');
  assert.match(no, /^HTTP\/1.1 403/);
  assert.match(no, /may only use acme\/widgets/);
});

test('a read-only host token: the guest clones, its push is refused with the operator named', async () => {
  const ro = new EgressProxy({
    modelBaseUrl: 'http://127.0.0.1:9',
    apiKey: undefined,
    allowHosts: [],
    forge: { kind: 'github', gitUrl: forge.gitUrl, token: READ_ONLY, allowRepos: ['acme/widgets'] },
  });
  ro.setTaskRepo('t_ro', { owner: 'acme', repo: 'widgets', branch: 'lia/t_ro' });
  const p = await ro.open('t_ro');
  const h = guestHome(p);
  try {
    const c = await git(['clone', '-q', 'https://github.com/acme/widgets.git', 'ro'], work, h);
    assert.equal(c.code, 0, c.stderr);
    const dir = path.join(work, 'ro');
    await git(['checkout', '-q', '-b', 'lia/t_ro'], dir, h);
    const r = await git(['push', 'origin', 'lia/t_ro'], dir, h);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /remote: Lia: the forge refused the host's credential for this repository \(403\)/,
    );
    assert.equal(forge.branchSha('acme', 'widgets', 'lia/t_ro'), undefined);
  } finally {
    await ro.closeAll();
  }
});

test('the stand-in refuses git without a credential (401 and a challenge) and unknown repositories (404)', async () => {
  const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-forge-nohome-'));
  const none = await git(['ls-remote', `${forge.gitUrl}/acme/widgets.git`], work, bare);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /could not read Username|Authentication failed/);
  const res = await fetch(`${forge.gitUrl}/acme/nope.git/info/refs?service=git-upload-pack`, {
    headers: { authorization: BASIC },
  });
  assert.equal(res.status, 404);
  assert.equal(await res.text(), 'Repository not found.\n');
  const anon = await fetch(`${forge.gitUrl}/acme/widgets.git/info/refs?service=git-upload-pack`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="GitHub"');
});

test('no forge API, no dumb HTTP, no repository for a task without one', async () => {
  for (const [method, url] of [
    ['GET', '/forge/acme/widgets.git/HEAD'],
    ['GET', '/forge/acme/widgets.git/info/refs'],
    ['POST', '/forge/repos/acme/widgets/pulls'],
    ['GET', '/forge/api/v3/repos/acme/widgets'],
  ]) {
    const res = await fetch(`http://127.0.0.1:${port}${url}`, {
      method,
      body: method === 'POST' ? '{}' : undefined,
    });
    assert.equal(res.status, 403, `${method} ${url}`);
    assert.match(await res.text(), /^Lia: /);
  }
  const other = await proxy.open('t_norepo');
  const res = await fetch(
    `http://127.0.0.1:${other}/forge/acme/widgets.git/info/refs?service=git-upload-pack`,
  );
  assert.equal(res.status, 403);
  assert.match(await res.text(), /this task has no repository/);
  await proxy.close('t_norepo');
});

test('hostile receive-pack bodies are refused from their first bytes, never buffered, never forwarded', async () => {
  const posted = () =>
    forge.requests.filter((q) => q.method === 'POST' && q.path.endsWith('git-receive-pack')).length;
  const before = posted();
  const head = (extra = '') =>
    `POST /forge/acme/widgets.git/git-receive-pack HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-git-receive-pack-request\r\ntransfer-encoding: chunked\r\n${extra}\r\n`;
  const chunk = (b: Buffer) =>
    Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);

  // Garbage.
  const g = await raw(port, head(), (s) => s.write(chunk(Buffer.from('GARBAGE!'.repeat(100)))));
  assert.match(g.response, /^HTTP\/1.1 400/);
  assert.match(g.response, /not a valid git push \(the request does not start with pkt-lines\)/);

  // A line claiming more than git allows.
  const big = await raw(port, head(), (s) => s.write(chunk(Buffer.from('ffff'))));
  assert.match(big.response, /longer than git allows/);

  // Valid-looking ref updates for ever, 16 MiB offered: refused once 64 KiB are held; the
  // connection is closed long before the guest is done sending.
  const line = pkt(`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/lia/t_one\n`);
  let sent = 0;
  const flood = await raw(port, head(), (s) => {
    const block = chunk(Buffer.concat(Array.from({ length: 512 }, () => line)));
    const pump = () => {
      while (sent < 16 * 1024 * 1024) {
        sent += block.length;
        if (!s.write(block)) return void s.once('drain', pump);
      }
    };
    s.on('close', () => {});
    pump();
  });
  assert.match(flood.response, /^HTTP\/1.1 400/);
  assert.match(flood.response, /at most 64 refs|more than 65536 bytes/);
  assert.ok(sent < 16 * 1024 * 1024, `the proxy read all ${sent} bytes`);
  if (process.env.LIA_FORGE_MEASURE) console.log(`flood: ${sent} bytes offered before the close`);

  // The same, one byte per HTTP chunk (a data event per byte): refused as fast, in linear time.
  const long = pkt(`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/${'x'.repeat(900)}\n`);
  const drip = Buffer.concat(Array.from({ length: 80 }, () => long));
  const dripped = Buffer.concat(
    [...drip].map((byte) => Buffer.from(`1\r\n${String.fromCharCode(byte)}\r\n`, 'latin1')),
  );
  const t0 = Date.now();
  const slow = await raw(port, head(), (s) => s.write(dripped));
  assert.match(slow.response, /^HTTP\/1.1 400/);
  assert.match(slow.response, /at most 64 refs|more than 65536 bytes/);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);

  // Content-encoded: refused.
  const gz = await raw(port, head('content-encoding: gzip\r\n'), (s) => s.write(chunk(Buffer.from('x'))));
  assert.match(gz.response, /^HTTP\/1.1 415/);

  // Ends before the flush.
  const cut = await raw(port, head(), (s) => {
    s.write(chunk(pkt(`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/lia/t_one\n`)));
    s.write('0\r\n\r\n');
  });
  assert.match(cut.response, /ended before its ref updates did/);

  // A refused push without report-status gets a plain 403.
  const noReport = await raw(port, head(), (s) => {
    s.write(
      chunk(Buffer.concat([pkt(`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/main\0agent=x\n`), FLUSH])),
    );
    s.write('0\r\n\r\n');
  });
  assert.match(noReport.response, /^HTTP\/1.1 403/);
  assert.match(noReport.response, /may push only to its own branch/);

  assert.equal(posted(), before, 'a refused push reached the forge');
  assert.equal(proxy.stats().handlerErrors, 0);
});

test('the pull request: created (201), opened again → the open one updated (the 422 path), comments', async () => {
  const client = new ForgeClient({ apiUrl: forge.apiUrl, token: TOKEN });
  const body = pullRequestBody({
    taskId: 't_one',
    summary: 'Added a line to a.txt.',
    prompt: 'Add "two" to src/a.txt\nand commit',
    taskUrl: 'https://lia.example/t/t_one',
    tokens: 12345,
    costUsd: 0.4321,
  });
  assert.match(body, /## Summary\n\nAdded a line/);
  assert.match(body, /> Add "two" to src\/a.txt\n> and commit/);
  assert.match(body, /12,345 tokens · \$0\.43/);
  const first = await client.openOrUpdate({
    owner: 'acme',
    repo: 'widgets',
    head: 'lia/t_one',
    base: 'main',
    title: 'Add two',
    body,
  });
  assert.equal(first.created, true);
  assert.equal(first.number, 1);
  assert.match(first.url, /\/acme\/widgets\/pull\/1$/);
  const second = await client.openOrUpdate({
    owner: 'acme',
    repo: 'widgets',
    head: 'lia/t_one',
    base: 'main',
    title: 'Add two (again)',
    body: `${body}\n\nupdated`,
  });
  assert.deepEqual({ n: second.number, created: second.created }, { n: 1, created: false });
  const pulls = forge.pulls('acme', 'widgets');
  assert.equal(pulls.length, 1);
  assert.equal(pulls[0]?.title, 'Add two (again)');
  assert.match(pulls[0]?.body ?? '', /updated$/);
  assert.equal(pulls[0]?.user, 'lia-app');
  const c = await client.comment('acme', 'widgets', 1, 'Pushed again after a follow-up.');
  assert.match(c.url, /pull\/1#issuecomment-/);
  assert.equal(forge.comments('acme', 'widgets')[0]?.body, 'Pushed again after a follow-up.');
  // The REST calls carried the host's token as GitHub expects it.
  const restReqs = forge.requests.filter((q) => q.path.startsWith('/api/v3/'));
  for (const q of restReqs) assert.equal(q.authorization, `token ${TOKEN}`);
});

test("with the user's forge login (LIA__FORGE__USER_LOGINS), the pull request names them and is assigned to them", async () => {
  const client = new ForgeClient({ apiUrl: forge.apiUrl, token: TOKEN });
  const input = {
    taskId: 't_one',
    owner: 'acme',
    repo: 'widgets',
    branch: 'lia/t_one',
    base: 'main',
    prompt: 'Add two',
  };
  const pr = await openTaskPullRequest(client, { ...input, requestedBy: 'octo-owner' });
  assert.equal(pr.assignError, undefined);
  const pull = forge.pulls('acme', 'widgets').find((p) => p.number === pr.number)!;
  assert.deepEqual(pull.assignees, ['octo-owner']);
  assert.match(pull.body ?? '', /requested by @octo-owner/);
  assert.equal(pull.user, 'lia-app', "still the host token's pull request");
  // An assignment the forge refuses leaves the pull request and says why.
  const readOnly = new ForgeClient({ apiUrl: forge.apiUrl, token: READ_ONLY });
  const mixed = {
    openOrUpdate: (i: Parameters<ForgeClient['openOrUpdate']>[0]) => client.openOrUpdate(i),
    assign: (...a: Parameters<ForgeClient['assign']>) => readOnly.assign(...a),
  } as unknown as ForgeClient;
  const refused = await openTaskPullRequest(mixed, { ...input, requestedBy: 'someone' });
  assert.equal(refused.number, pr.number);
  assert.equal(refused.created, false);
  assert.match(refused.assignError ?? '', /may not do this on acme\/widgets/);
  assert.deepEqual(pull.assignees, ['octo-owner'], 'nobody else was assigned');
  assert.equal(forgeLoginOf({ forge: { user_logins: ['123=octo-owner', 'u-2=other'] } }, 'u-2'), 'other');
  assert.equal(forgeLoginOf({ forge: { user_logins: ['123=octo-owner'] } }, '12'), undefined);
});

test('pull request errors are clear: unknown repository, bad token, read-only token, nothing to merge', async () => {
  const client = new ForgeClient({ apiUrl: forge.apiUrl, token: TOKEN });
  const pr = { head: 'lia/t_one', base: 'main', title: 't', body: 'b' };
  const fails = async (c: ForgeClient, i: object, status: number, msg: RegExp) => {
    await assert.rejects(
      c.openOrUpdate({ owner: 'acme', repo: 'widgets', ...pr, ...i }),
      (e: unknown) => e instanceof ForgeError && e.status === status && msg.test(e.message),
    );
  };
  await fails(client, { repo: 'nope' }, 404, /no repository acme\/nope, or the host's token cannot see it/);
  await fails(
    new ForgeClient({ apiUrl: forge.apiUrl, token: 'ghs_bad' }),
    {},
    401,
    /refused the host's token/,
  );
  await fails(
    new ForgeClient({ apiUrl: forge.apiUrl, token: READ_ONLY }),
    {},
    403,
    /may not do this on acme\/widgets/,
  );
  await fails(client, { head: 'lia/none' }, 422, /from lia\/none into main: head invalid/);
  await fails(client, { head: 'main', base: 'main' }, 422, /No commits between main and main/);
});

test('the stand-in speaks GitHub: shapes and codes as the real API', async () => {
  const get = (p: string, token?: string) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      http
        .get(`${forge.apiUrl}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
          let t = '';
          res.on('data', (c) => {
            t += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(t) }));
        })
        .on('error', reject);
    });
  assert.deepEqual((await get('/repos/acme/widgets')).body.message, 'Requires authentication');
  assert.equal((await get('/repos/acme/widgets', 'nope')).body.message, 'Bad credentials');
  const repo = await get('/repos/acme/widgets', TOKEN);
  assert.equal(repo.status, 200);
  assert.equal(repo.body.full_name, 'acme/widgets');
  assert.equal(repo.body.default_branch, 'main');
  assert.equal((await get('/repos/acme/none', TOKEN)).status, 404);
  const list = await get('/repos/acme/widgets/pulls?state=open&head=acme:lia/t_one', TOKEN);
  const first = (list.body as unknown as { head: { ref: string; sha: string } }[])[0];
  assert.equal(first?.head.ref, 'lia/t_one');
  assert.equal(first?.head.sha, forge.branchSha('acme', 'widgets', 'lia/t_one'));
});
