/**
 * What a link holder can do, and how much: a link acts on its one task only (it lists that task,
 * carries and makes no links), a newer link or a stop revokes it (its open sockets close too),
 * its socket closes when it expires; the API bounds what any caller sends and takes — frames,
 * sockets per task, output a page at a time, one stored resize, no input for an ended task.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;
const OWNER = 'u-links';
let t: ReturnType<typeof taskOps>;

before(async () => {
  s = await startTestStack('links', {
    LIA__QUOTA__LIVE_TASKS_PER_USER: '6',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '6',
  });
  t = taskOps(s, OWNER);
});
after(async () => s?.close());

const withToken = (token: string, route: string) =>
  fetch(`${s.apiUrl}${route}`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({
    status: r.status,
    json: (await r.json()) as any,
  }));

/** Opens a raw socket and resolves with the close code it gets within `ms`. */
function closeCode(url: string, ms: number): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('open');
    }, ms);
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.on('error', () => {});
  });
}
const streamUrl = (taskId: string, token: string) =>
  `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${taskId}/stream?token=${encodeURIComponent(token)}`;

describe('a link', () => {
  test('lists its own task only, carries no links and cannot make one', async () => {
    const a = await t.spawnShell();
    const b = await t.spawnShell();
    const list = await withToken(a.token, '/api/v1/tasks');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.tasks.map((x: { id: string }) => x.id),
      [a.taskId],
    );
    assert.ok(list.json.tasks.every((x: object) => !('url' in x)));
    const view = await withToken(a.token, `/api/v1/tasks/${a.taskId}`);
    assert.equal(view.status, 200);
    assert.equal('url' in view.json, false);
    assert.equal((await withToken(a.token, `/api/v1/tasks/${a.taskId}?link=true`)).status, 403);
    assert.equal((await withToken(a.token, `/api/v1/tasks/${b.taskId}`)).status, 403);
    // A service's list carries no links either.
    const own = await s.api('GET', '/api/v1/tasks', OWNER);
    assert.ok(own.json.tasks.every((x: object) => !('url' in x)));
    for (const id of [a.taskId, b.taskId]) await t.stop(id);
  });

  test('is revoked by a newer link, and its open socket closes', async () => {
    const a = await t.spawnShell();
    await t.waitStatus(a.taskId, 'running');
    const closed = closeCode(streamUrl(a.taskId, a.token), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const fresh = await s.api('GET', `/api/v1/tasks/${a.taskId}?link=true`, OWNER);
    const token2 = decodeURIComponent(new URL(fresh.json.url).hash.slice('#token='.length));
    assert.equal(await closed, 4001, "the old link's socket closed");
    const old = await withToken(a.token, `/api/v1/tasks/${a.taskId}`);
    assert.equal(old.status, 401);
    assert.match(old.json.error.message, /replaced by a newer one/);
    assert.equal((await withToken(token2, `/api/v1/tasks/${a.taskId}`)).status, 200);
    await t.stop(a.taskId);
    // …and by a stop.
    assert.equal((await withToken(token2, `/api/v1/tasks/${a.taskId}`)).status, 401);
  });

  test('closes its socket when it expires', async () => {
    const a = await t.spawnShell();
    await t.waitStatus(a.taskId, 'running');
    const short = await s.links.sign(OWNER, a.taskId, { expiresAt: Date.now() + 3000, issuedAt: Date.now() });
    const started = Date.now();
    assert.equal(await closeCode(streamUrl(a.taskId, short), 20_000), 4001);
    assert.ok(Date.now() - started < 10_000);
    await t.stop(a.taskId);
  });
});

describe('the API bounds what a caller sends and takes', () => {
  test('a frame over 128 KiB closes the socket; a ninth socket on one task is refused', async () => {
    const a = await t.spawnShell();
    await t.waitStatus(a.taskId, 'running');
    const fresh = await s.api('GET', `/api/v1/tasks/${a.taskId}?link=true`, OWNER);
    const token = decodeURIComponent(new URL(fresh.json.url).hash.slice('#token='.length));
    const ws = new WebSocket(streamUrl(a.taskId, token));
    await new Promise((r) => ws.once('open', r));
    const code = new Promise<number>((r) => ws.once('close', r));
    ws.send(JSON.stringify({ type: 'input', data: 'x'.repeat(200 * 1024) }));
    assert.equal(await code, 1009, 'message too big');
    const open = await Promise.all(
      Array.from({ length: 8 }, () => StreamClient.open(s.apiUrl, a.taskId, token)),
    );
    const ninth = await new Promise<number>((resolve) => {
      const w = new WebSocket(streamUrl(a.taskId, token));
      w.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      w.on('open', () => resolve(101));
    });
    assert.equal(ninth, 429);
    for (const c of open) await c.close();
    await t.stop(a.taskId);
  });

  test('output comes a page at a time, and the pages add up to the log', async () => {
    const a = await t.spawnShell();
    await t.waitStatus(a.taskId, 'running');
    const c = await StreamClient.open(s.apiUrl, a.taskId, a.token);
    c.type("head -c 2600000 /dev/zero | tr '\\0' 'a'; echo; echo page-done\r");
    await c.waitForText(/\npage-done/, 60_000);
    await c.close();
    const raw = await fetch(`${s.apiUrl}/api/v1/tasks/${a.taskId}/output?format=raw`, {
      headers: { authorization: `Bearer ${s.serviceToken}`, 'x-lia-user': OWNER },
    });
    const all = Buffer.from(await raw.arrayBuffer());
    assert.equal(raw.headers.get('x-lia-more'), 'false');
    assert.ok(all.length > 2_600_000);
    let text = '';
    let pages = 0;
    for (let from = 1, more = true; more; pages++) {
      const p = await s.api('GET', `/api/v1/tasks/${a.taskId}/output?from=${from}`, OWNER);
      assert.equal(p.status, 200);
      assert.ok(Buffer.byteLength(p.json.text) <= 1024 * 1024 + 256 * 1024, 'a page stays near its budget');
      text += p.json.text;
      more = p.json.more;
      from = p.json.nextSeq;
    }
    assert.ok(pages >= 3, `${pages} pages`);
    assert.equal(text, all.toString('utf8'));
    await t.stop(a.taskId);
  });

  test('one stored resize per task; an ended task takes no input or resize', async () => {
    const a = await t.spawnShell(2);
    await t.waitStatus(a.taskId, 'suspended', 30_000);
    for (const [cols, rows] of [
      [90, 20],
      [100, 30],
      [110, 40],
    ])
      await s.tasks.resize(a.taskId, cols!, rows!);
    const { rows } = await s.pool.query(
      `SELECT cols FROM task_input WHERE task_id = $1 AND kind = 'resize'`,
      [a.taskId],
    );
    assert.deepEqual(
      rows.map((r) => r.cols),
      [110],
    );
    await s.api('DELETE', `/api/v1/tasks/${a.taskId}`, OWNER);
    await t.waitStatus(a.taskId, 'terminated');
    await assert.rejects(s.tasks.resize(a.taskId, 80, 24), /has terminated; it takes no more input/);
    await assert.rejects(
      s.tasks.input({ userId: OWNER, admin: false }, a.taskId, Buffer.from('x')),
      /has terminated; it takes no more input/,
    );
    const left = await s.pool.query('SELECT count(*)::int AS n FROM task_input WHERE task_id = $1', [
      a.taskId,
    ]);
    assert.equal(left.rows[0].n, 0);
  });
});
