/**
 * The task bus and the output follower against a real PostgreSQL: a LISTEN connection that the
 * server kills is re-established and every watcher woken, so a follower misses no chunk that
 * was written while it was away; followers deliver from their seq, in order, exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CHANNELS } from '../../common/db/channels.js';
import { createPool, type Pool } from '../../common/db/pool.js';
import { createLogger } from '../../common/logger.js';
import { TaskBus } from '../../output/bus.js';
import { OutputFollower } from '../../output/follow.js';
import { type Chunk, OutputLog } from '../../output/log.js';
import { testDatabase, waitFor } from '../helpers/env.js';

let url: string;
let pool: Pool;
let log: OutputLog;
let bus: TaskBus;
const logger = createLogger('test-bus', 'fatal');
const chunk = (seq: number): Chunk => ({ seq, data: Buffer.from(`chunk ${seq}\n`) });

before(async () => {
  url = await testDatabase('lia_test_output_bus');
  pool = createPool(url);
  log = new OutputLog(pool);
  bus = await TaskBus.start(url, logger, [CHANNELS.output, CHANNELS.task, CHANNELS.input]);
});
after(async () => {
  await bus?.close();
  await pool?.end();
});

/** Kills the bus's LISTEN connection from the server's side, as a PostgreSQL restart would. */
async function killListener(): Promise<void> {
  const { rows } = await pool.query(
    `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
     WHERE application_name = 'lia-listen' AND datname = current_database()`,
  );
  assert.ok(rows.length >= 1, 'no LISTEN connection to kill');
}

test('a killed LISTEN connection comes back and wakes every watcher', async () => {
  const woken: string[] = [];
  const unwatch = bus.watch('t_busbusbusb', {
    output: () => woken.push('output'),
    task: () => woken.push('task'),
    input: () => woken.push('input'),
  });
  const before = bus.reconnects;
  await killListener();
  await waitFor('the bus to reconnect', () => bus.reconnects > before, 10_000);
  assert.deepEqual(woken.sort(), ['input', 'output', 'task']);
  // Notifications flow again on the new connection.
  woken.length = 0;
  await pool.query('SELECT pg_notify($1, $2)', [CHANNELS.task, 't_busbusbusb']);
  await waitFor('a task notification', () => woken.includes('task'), 5000);
  unwatch();
});

test('a follower delivers from its seq, in order, once, across a lost LISTEN connection', async () => {
  const taskId = 't_followfoll';
  await log.append(taskId, [1, 2, 3, 4].map(chunk));
  const got: number[] = [];
  const f = await OutputFollower.start(log, bus, taskId, {
    from: 3,
    deliver: async (chunks) => {
      // A slow consumer: the follower must not read on (or skip) while it works.
      await new Promise((r) => setTimeout(r, 5));
      for (const c of chunks) got.push(c.seq);
    },
  });
  assert.deepEqual(got, [3, 4]);
  await log.append(taskId, [5, 6].map(chunk));
  await waitFor('chunks 5 and 6', () => got.length === 4, 5000);
  // Written while the bus is away: its notification is lost, the reconnect's wake-up finds it.
  await killListener();
  await log.append(taskId, [7, 8, 9].map(chunk));
  await waitFor('chunks 7 to 9', () => got.length === 7, 10_000);
  // A doubled write (a worker's replay) doubles nothing.
  await log.append(taskId, [8, 9, 10].map(chunk));
  await waitFor('chunk 10', () => got.length === 8, 5000);
  f.close();
  assert.deepEqual(got, [3, 4, 5, 6, 7, 8, 9, 10]);
});

test('a follower from before the retained output is told what was dropped', async () => {
  const taskId = 't_truncatedd';
  await log.append(taskId, [1, 2, 3, 4, 5].map(chunk));
  await log.enforceRetention(taskId, chunk(5).data.length * 2);
  let firstKept = 0;
  const got: number[] = [];
  let greeted = 0;
  const f = await OutputFollower.start(log, bus, taskId, {
    from: 1,
    truncated: (first) => {
      firstKept = first;
    },
    ready: (from) => {
      greeted = from;
      assert.deepEqual(got, [], 'ready comes before the first delivery');
    },
    deliver: (chunks) => {
      for (const c of chunks) got.push(c.seq);
    },
  });
  f.close();
  assert.equal(firstKept, 4);
  assert.equal(greeted, 4);
  assert.deepEqual(got, [4, 5]);
});

test('a page of the log stops at its byte budget and says where to go on', async () => {
  const taskId = 't_pagepagepa';
  await log.append(taskId, [1, 2, 3, 4, 5, 6].map(chunk));
  const size = chunk(1).data.length;
  const p1 = await log.page(taskId, 2, size * 2);
  assert.deepEqual(
    p1.chunks.map((c) => c.seq),
    [2, 3],
  );
  assert.equal(p1.nextSeq, 4);
  const p2 = await log.page(taskId, p1.nextSeq);
  assert.deepEqual(
    p2.chunks.map((c) => c.seq),
    [4, 5, 6],
  );
  assert.equal(p2.nextSeq, 7);
  assert.equal(p2.truncated, false);
});
