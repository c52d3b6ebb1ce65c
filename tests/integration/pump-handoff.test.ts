/**
 * bootVm starts the agent's output pump, so the first output is stored (and streamed) before the
 * workflow schedules pumpOutput; pumpOutput takes that pump over with nothing lost or doubled.
 * The host activities run here on their own (Temporal's activity environment), with the real
 * local driver, sidecar and PostgreSQL, so the gap between the two activities is ours to hold.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHostActivities } from '../../activities/host.js';
import type { OutputPump } from '../../activities/output-pump.js';
import { PumpHandoff } from '../../activities/pump-handoff.js';
import type { AgentExit, HostActivities } from '../../common/activities.js';
import { CHANNELS } from '../../common/db/channels.js';
import { enqueueInput } from '../../common/db/input.js';
import { createPool, type Pool } from '../../common/db/pool.js';
import { createTask } from '../../common/db/tasks.js';
import { newTaskId } from '../../common/ids.js';
import { createLogger } from '../../common/logger.js';
import type { TaskLimits } from '../../common/task.js';
import { TaskBus } from '../../output/bus.js';
import { OutputLog } from '../../output/log.js';
import { isAlive, readPidFile } from '../../system/procs.js';
import { LocalDriver } from '../../vm/drivers/local.js';
import { type TestTemporal, testConfig, testDatabase, testTemporal, waitFor } from '../helpers/env.js';

let pool: Pool;
let bus: TaskBus;
let temporal: TestTemporal;
let stateDir: string;
let driver: LocalDriver;
let acts: HostActivities;
let handoff: PumpHandoff<OutputPump>;
const limits: TaskLimits = { idleTimeoutMs: 60_000, vcpus: 1, memoryMib: 256, storageGb: 1 };

before(async () => {
  const url = await testDatabase('lia_test_pump_handoff');
  temporal = await testTemporal();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-handoff-'));
  pool = createPool(url);
  const logger = createLogger('test-handoff', 'warn');
  bus = await TaskBus.start(url, logger, [CHANNELS.input]);
  driver = new LocalDriver({ stateDir, hostId: 'handoff', logger });
  handoff = new PumpHandoff<OutputPump>(1_500);
  const config = testConfig({ LIA__DATABASE__URL: url, LIA__STATE__DIR: stateDir });
  acts = createHostActivities(
    {
      driver,
      pool,
      output: new OutputLog(pool),
      config,
      logger,
      client: temporal.client,
      inputBus: bus,
    },
    handoff,
  );
});
after(async () => {
  await handoff?.releaseAll();
  for (const id of (await driver?.list()) ?? []) await driver.destroy(id);
  await bus?.close();
  await pool?.end();
  await temporal?.teardown();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

async function newShellTask(): Promise<string> {
  const id = newTaskId();
  await createTask(
    pool,
    {
      id,
      owner: 'u-handoff',
      runtime: 'shell',
      promptFirstLine: 'p',
      files: [],
      size: { vcpus: 1, memoryMib: 256, storageGb: 1 },
    },
    { live: 100, running: 100, total: 100 },
  );
  return id;
}

const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A) =>
  new MockActivityEnvironment().run(fn, ...args);

async function storedText(taskId: string): Promise<{ text: string; seqs: number[] }> {
  const chunks = await new OutputLog(pool).read(taskId, 0, 10_000);
  return {
    text: Buffer.concat(chunks.map((c) => c.data)).toString(),
    seqs: chunks.map((c) => Number(c.seq)),
  };
}

const type = (taskId: string, s: string) =>
  enqueueInput(pool, taskId, { kind: 'stdin', data: Buffer.from(s) });

test('output and input flow from boot on; pumpOutput takes the pump over and sees the exit', async () => {
  const taskId = await newShellTask();
  await run(acts.bootVm, { taskId, limits });

  // No pumpOutput yet: bootVm's pump stores output and delivers input on its own.
  await type(taskId, 'echo early-$((6*7))\r');
  await waitFor('the early pump to store the echo', async () =>
    (await storedText(taskId)).text.includes('early-42'),
  );

  const env = new MockActivityEnvironment();
  const exit: Promise<AgentExit> = env.run(acts.pumpOutput, {
    taskId,
    runtime: 'shell' as const,
    reportMs: 500,
  });
  await type(taskId, 'echo late-$((7*7)); exit 3\r');
  assert.equal((await exit).exitCode, 3);

  const { text, seqs } = await storedText(taskId);
  assert.match(text, /late-49/);
  assert.equal(text.split('early-42').length - 1, 1, 'the echo is stored once');
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    'seqs run 1..n with no gap',
  );
  await run(acts.destroyVm, { taskId });
});

test('a pump nobody takes over is stopped, and the next one loses nothing', async () => {
  const taskId = await newShellTask();
  await run(acts.bootVm, { taskId, limits });
  await waitFor('the prompt to be stored', async () => (await storedText(taskId)).seqs.length > 0);
  // The handoff's limit here is 1.5 s; after it, input waits in PostgreSQL for the next pump.
  await new Promise((r) => setTimeout(r, 2_000));
  await type(taskId, 'echo after-$((8*8))\r');
  await new Promise((r) => setTimeout(r, 500));
  assert.doesNotMatch((await storedText(taskId)).text, /after-64/, 'no pump is attached');

  const env = new MockActivityEnvironment();
  const pumping = env.run(acts.pumpOutput, { taskId, runtime: 'shell' as const, reportMs: 500 });
  await waitFor('the new pump to deliver the queued input', async () =>
    (await storedText(taskId)).text.includes('after-64'),
  );
  env.cancel();
  await assert.rejects(pumping);
  const { seqs } = await storedText(taskId);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
  );
  await run(acts.destroyVm, { taskId });
});

test('destroyVm right after boot stops the waiting pump and leaves no process', async () => {
  const taskId = await newShellTask();
  await run(acts.bootVm, { taskId, limits });
  const pidFile = path.join(stateDir, 'hosts', 'handoff', 'vms', taskId, 'sidecar.pid');
  const pid = readPidFile(pidFile);
  assert.ok(pid && isAlive(pid), 'the sidecar runs');
  await run(acts.destroyVm, { taskId });
  assert.equal(handoff.take(taskId), undefined);
  await waitFor('the sidecar to be gone', () => !isAlive(pid) && 'gone', 5_000);
  assert.ok(!(await driver.list()).includes(taskId));
});
