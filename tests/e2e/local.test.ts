/**
 * One agent task end to end with the local driver, on the real Temporal dev server and the real
 * PostgreSQL: lifecycle, terminal round trip, idle suspend and resume, terminate from each state,
 * a host worker killed with -9, and the stream's exactly-once reconnect.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isAlive, sessionPids } from '../../system/procs.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;
const OWNER = 'u-alice';

let t: ReturnType<typeof taskOps>;

before(async () => {
  s = await startTestStack('e2e_local');
  t = taskOps(s, OWNER);
});
after(async () => {
  await s?.close();
});

/** After terminate: no process of the agent's session, no VM folder, a terminal row, no queued input. */
async function assertNothingLeft(taskId: string, pid: number) {
  await t.waitStatus(taskId, 'terminated');
  await waitFor('the agent session to be gone', () => sessionPids(pid).length === 0 && !isAlive(pid), 10_000);
  assert.equal(fs.existsSync(t.vmDir(taskId)), false, 'the VM folder is removed');
  const { rows } = await s.pool.query('SELECT status FROM tasks WHERE id = $1', [taskId]);
  assert.equal(rows[0].status, 'terminated');
  const input = await s.pool.query('SELECT count(*)::int AS n FROM task_input WHERE task_id = $1', [taskId]);
  assert.equal(input.rows[0].n, 0);
}

describe('a shell task, end to end', () => {
  test('goes pending → starting → running, streams output, and echoes typed input', async () => {
    const { taskId, token } = await t.spawnShell();
    const seen = new Set<string>([await t.statusOf(taskId)]);
    await waitFor('running', async () => {
      const st = await t.statusOf(taskId);
      seen.add(st);
      return st === 'running';
    });
    assert.ok(seen.has('running'));
    const { rows } = await s.pool.query('SELECT status, host_id FROM tasks WHERE id = $1', [taskId]);
    assert.equal(rows[0].host_id, s.config.host.id);
    // Started eagerly: the API shares the control worker's connection, so the server handed the
    // first workflow task back with the start instead of through the task queue.
    const [started] = (await s.temporal.client.workflow.getHandle(taskId).fetchHistory()).events ?? [];
    assert.equal(started?.workflowExecutionStartedEventAttributes?.eagerExecutionAccepted, true);
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    await stream.waitForText('$ ');
    stream.type('echo "sum=$((40 + 2))"\r');
    await stream.waitForText('sum=42');
    assert.equal(stream.duplicates, 0);
    await stream.close();
    const pid = t.agentPid(taskId);
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
    await assertNothingLeft(taskId, pid);
  });

  test('input typed before the agent has started is delivered once it runs, not dropped', async () => {
    // A big file makes handing the files over slow, so queued input is ready before the start.
    const actor = { userId: OWNER, admin: false };
    const { taskId, url } = await s.tasks.create(actor, {
      prompt: 'p',
      runtime: 'shell',
      files: [{ name: 'big.bin', data: Buffer.alloc(8 * 1024 * 1024, 1) }],
    });
    const token = decodeURIComponent(new URL(url).hash.slice('#token='.length));
    // Still pending: the input waits in PostgreSQL until the agent can take it.
    await s.tasks.input(actor, taskId, Buffer.from('echo early-$((6*7))\r'));
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    await stream.waitForText('early-42');
    await stream.close();
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
    await t.waitStatus(taskId, 'terminated');
  });

  test('an idle timeout suspends it; resume brings back the same shell', async () => {
    const { taskId, token } = await t.spawnShell(2);
    await t.waitStatus(taskId, 'running');
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    stream.type('export LIA_MARK=kept-$((6 * 7))\r');
    await waitFor('the export to run', () => stream.text().includes('export LIA_MARK'));
    await t.waitStatus(taskId, 'suspended', 20_000);
    const pid = t.agentPid(taskId);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    assert.match(stat.slice(stat.lastIndexOf(')') + 2), /^T/, 'the agent is stopped while suspended');
    const resumed = await s.api('POST', `/api/v1/tasks/${taskId}/resume`, OWNER);
    assert.equal(resumed.status, 200, JSON.stringify(resumed.json));
    assert.equal(resumed.json.status, 'running');
    stream.type('echo "mark=$LIA_MARK"\r');
    await stream.waitForText('mark=kept-42');
    await stream.close();
    // Suspended again by the timer, then terminated from there.
    await t.waitStatus(taskId, 'suspended', 20_000);
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
    await assertNothingLeft(taskId, pid);
  });

  test('terminate while starting leaves nothing behind', async () => {
    const { taskId } = await t.spawnShell();
    // Straight away: the workflow is pending or starting.
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
    await t.waitStatus(taskId, 'terminated');
    assert.equal(fs.existsSync(t.vmDir(taskId)), false);
  });

  test('terminate while running leaves nothing behind, background jobs included', async () => {
    const { taskId, token } = await t.spawnShell();
    await t.waitStatus(taskId, 'running');
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    stream.type('sleep 1000 & echo started-bg\r');
    await stream.waitForText('started-bg');
    await stream.close();
    const pid = t.agentPid(taskId);
    assert.ok(sessionPids(pid).length >= 2, 'the shell and its background job');
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER)).status, 202);
    await assertNothingLeft(taskId, pid);
  });

  test('kill -9 of the host worker: the task goes on, no output byte lost or doubled', async () => {
    const { taskId, token } = await t.spawnShell();
    await t.waitStatus(taskId, 'running');
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    stream.type('for i in $(seq 1 400); do echo "line-$i"; sleep 0.01; done; echo "count-done"\r');
    await stream.waitForText('line-50\r\n');
    await s.killHostWorker('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await s.startHostWorker();
    await stream.waitForText('count-done\r\n', 60_000);
    const raw = await fetch(`${s.apiUrl}/api/v1/tasks/${taskId}/output?format=raw`, {
      headers: { authorization: `Bearer ${s.serviceToken}`, 'x-lia-user': OWNER },
    });
    const text = Buffer.from(await raw.arrayBuffer()).toString('utf8');
    const lines = terminalLines(text).filter((l) => /^line-\d+$/.test(l));
    assert.deepEqual(
      lines,
      Array.from({ length: 400 }, (_, i) => `line-${i + 1}`),
      'every line exactly once, in order',
    );
    assert.equal(stream.duplicates, 0);
    assert.equal(stream.text(), text, 'the stream saw exactly the stored bytes');
    const { rows } = await s.pool.query(
      'SELECT count(*)::int AS n, max(seq)::int AS m, min(seq)::int AS lo FROM output_chunks WHERE task_id = $1',
      [taskId],
    );
    assert.equal(rows[0].n, rows[0].m - rows[0].lo + 1, 'seqs are contiguous');
    // And the task still takes input through the new worker.
    stream.type('echo after-restart-$((1+1))\r');
    await stream.waitForText('after-restart-2');
    await stream.close();
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
    await t.waitStatus(taskId, 'terminated');
  });

  test('a WebSocket that drops and reconnects from its last seq sees every byte exactly once', async () => {
    const { taskId, token } = await t.spawnShell();
    await t.waitStatus(taskId, 'running');
    const stream = await StreamClient.open(s.apiUrl, taskId, token);
    stream.type('for i in $(seq 1 300); do echo "tick-$i"; sleep 0.005; done; echo ticks-$((2 * 3))-end\r');
    await stream.waitForText('tick-40\r\n');
    stream.cut();
    await new Promise((r) => setTimeout(r, 300));
    await stream.connect(s.apiUrl, taskId, token);
    await stream.waitForText('ticks-6-end\r\n');
    assert.equal(stream.duplicates, 0, 'no chunk twice');
    assert.equal(stream.gaps, 0, 'no chunk missing');
    const ticks = terminalLines(stream.text()).filter((l) => /^tick-\d+$/.test(l));
    assert.deepEqual(
      ticks,
      Array.from({ length: 300 }, (_, i) => `tick-${i + 1}`),
    );
    await stream.close();
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
    await t.waitStatus(taskId, 'terminated');
  });

  test('numbered input is stored exactly once across a dropped connection, and acknowledged', async () => {
    const { taskId, token } = await t.spawnShell();
    await t.waitStatus(taskId, 'running');
    const sender = `page-${Date.now()}`;
    const a = await StreamClient.open(s.apiUrl, taskId, token, 0, sender);
    a.type('echo one-$((1 + 1))\r', 1);
    await waitFor('the ack of input 1', () => a.acks.includes(1));
    // Sent, then the connection dies before any ack can come back: the client cannot know
    // whether it was stored, so it sends it again on the next connection.
    a.type('echo two-$((2 + 2))\r', 2);
    a.cut();
    const b = await StreamClient.open(s.apiUrl, taskId, token, 0, sender);
    b.type('echo two-$((2 + 2))\r', 2);
    b.type('echo one-$((1 + 1))\r', 1); // a stale repeat
    b.type('echo three-$((3 + 3))\r', 3);
    await b.waitForText('three-6\r\n');
    await waitFor('acks of 1, 2 and 3', () => [1, 2, 3].every((n) => b.acks.includes(n)));
    const lines = terminalLines(b.text());
    assert.deepEqual(
      ['one-2', 'two-4', 'three-6'].map((x) => lines.filter((l) => l === x).length),
      [1, 1, 1],
      `each command ran once: ${JSON.stringify(lines)}`,
    );
    // Another client's numbers are its own.
    const c = await StreamClient.open(s.apiUrl, taskId, token, 0, `${sender}-other`);
    c.type('echo four-$((4 + 4))\r', 1);
    await c.waitForText('four-8\r\n');
    // Numbered input needs a sender; a malformed sender is refused before the upgrade.
    const d = await StreamClient.open(s.apiUrl, taskId, token);
    d.type('echo x\r', 1);
    await waitFor('the error', () => d.errors.some((e) => /sender/.test(e)));
    const bad = await fetch(
      `${s.apiUrl}/api/v1/tasks/${taskId}/stream?sender=no!&token=${encodeURIComponent(token)}`,
    );
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /sender must be/);
    for (const x of [b, c, d]) await x.close();
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
    await t.waitStatus(taskId, 'terminated');
    const senders = await s.pool.query('SELECT count(*)::int AS n FROM input_senders WHERE task_id = $1', [
      taskId,
    ]);
    assert.equal(senders.rows[0].n, 0, 'the senders of an ended task are forgotten');
  });

  test("the owner's tasks are found in Temporal by LiaOwner", async () => {
    const owner = `u-find-${Date.now()}`;
    const { taskId } = await t.spawnShell(600, owner);
    const cli = process.env.LIA_TEST_TEMPORAL_CLI ?? s.config.temporal.cli ?? 'temporal';
    const out = await waitFor('the visibility record', () => {
      const o = execFileSync(
        cli,
        ['workflow', 'list', '--address', s.temporal.address, '--query', `LiaOwner="${owner}"`, '-o', 'json'],
        { encoding: 'utf8' },
      );
      return o.includes(taskId) ? o : undefined;
    });
    const listed = JSON.parse(out) as { execution: { workflowId: string } }[];
    assert.deepEqual(
      listed.map((w) => w.execution.workflowId),
      [taskId],
    );
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner);
    await waitFor(
      'terminated',
      async () => (await taskOps(s, owner).statusOf(taskId)) === 'terminated',
      30_000,
      100,
    );
  });
});
