/**
 * Token budgets, per task and per user per day, with the real proxy, the host's gate
 * (activities/budget-gate.ts) and real PostgreSQL: usage recorded as the host worker records it,
 * a task past its budget refused with the reason, shown in its status; its owner's other tasks
 * refused past the daily budget, other users' not; a raised budget lets calls through again and
 * clears the notice; a database that does not answer does not stop an agent.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createBudgetGate } from '../../activities/budget-gate.js';
import { taskEmbed } from '../../bot/view.js';
import { createPool, type Pool } from '../../common/db/pool.js';
import { addUsage, createTask, getTask } from '../../common/db/tasks.js';
import { toView } from '../../tasks/views.js';
import { costUsd } from '../../vm/egress/pricing.js';
import { EgressProxy } from '../../vm/egress/proxy.js';
import type { ModelUsage } from '../../vm/egress/usage-meter.js';
import { guestRequest, messagesBody } from '../helpers/egress.js';
import { testDatabase, waitFor } from '../helpers/env.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const KEY = 'sk-ant-host-only-key-budget-0123456789';
const model = new ModelStandIn(KEY, { name: 'Bash', input: {} });
let pool: Pool;
let dbUrl: string;
const silent = { warn: () => {} };
const A = 't_budgetaaa2';
const B = 't_budgetbbb2';
const C = 't_budgetccc2';
/** What one answer of the stand-in costs in budget tokens (no caching: input + output). */
const PER_CALL = model.usage.input + model.usage.output;

before(async () => {
  await model.start();
  dbUrl = await testDatabase('lia_test_budget');
  pool = createPool(dbUrl);
  for (const [id, owner] of [
    [A, 'u-one'],
    [B, 'u-one'],
    [C, 'u-two'],
  ] as const)
    await createTask(
      pool,
      {
        id,
        owner,
        runtime: 'claude',
        promptFirstLine: 'p',
        files: [],
        size: { vcpus: 1, memoryMib: 256, storageGb: 1 },
      },
      { live: 100, running: 100, total: 1000 },
    );
});
after(async () => {
  await pool.end();
  await model.close();
});

/** A proxy with the host's gate, recording usage as workers/host.ts does. */
function hostProxy(limits: { tokensPerTask: number; tokensPerUserPerDay: number }, ttlMs = 0) {
  const proxy = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [],
    budget: createBudgetGate({ pool, limits, logger: silent, ttlMs }),
  });
  const writes: Promise<void>[] = [];
  proxy.on('usage', (taskId: string, u: ModelUsage) =>
    writes.push(addUsage(pool, taskId, u, costUsd(u.model, u))),
  );
  return {
    proxy,
    async call(taskId: string) {
      const n = writes.length;
      const r = await guestRequest(proxy, taskId, {
        path: '/v1/messages?beta=true',
        body: messagesBody(true),
      });
      if (r.status === 200) await waitFor('the usage to be recorded', () => writes.length > n);
      await Promise.all(writes);
      return r;
    },
  };
}

test('a task past its budget: its calls are refused with the reason, which its status shows', async () => {
  const { proxy, call } = hostProxy({ tokensPerTask: 3 * PER_CALL - 1, tokensPerUserPerDay: 100 * PER_CALL });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await call(A)).status, 200, `call ${i + 1}`);
    const refused = await call(A);
    assert.equal(refused.status, 429);
    const message = JSON.parse(refused.text).error.message as string;
    assert.match(
      message,
      /this task has used its model budget \(3,840 of 3,839 tokens, LIA__QUOTA__TOKENS_PER_TASK\)/,
    );
    const row = await waitFor('the notice', async () => {
      const r = await getTask(pool, A);
      return r?.budgetNotice ? r : undefined;
    });
    assert.equal(row.budgetNotice, message);
    const view = toView(row);
    assert.equal(view.budgetNotice, message);
    const embed = taskEmbed(view).toJSON();
    assert.ok(
      embed.fields?.some((f) => f.name === 'Model budget' && f.value === message),
      JSON.stringify(embed),
    );
    assert.ok(embed.fields?.some((f) => f.name === 'Tokens' && /^3,600 in · 240 out/.test(f.value)));
  } finally {
    await proxy.closeAll();
  }
});

test("the owner's tasks together past the daily budget are refused; another user's are not", async () => {
  // u-one used 3 calls on A already.
  const { proxy, call } = hostProxy({ tokensPerTask: 0, tokensPerUserPerDay: 4 * PER_CALL });
  try {
    assert.equal((await call(B)).status, 200);
    const refused = await call(B);
    assert.equal(refused.status, 429);
    assert.match(
      JSON.parse(refused.text).error.message,
      /your tasks have used today's model budget \(5,120 of 5,120 tokens, LIA__QUOTA__TOKENS_PER_USER_PER_DAY\); model calls are refused until midnight UTC \(in \d+ h \d+ min\)/,
    );
    assert.equal((await call(C)).status, 200, 'another user is not affected');
    const { rows } = await pool.query('SELECT owner, tokens::int AS tokens FROM usage_daily ORDER BY owner');
    assert.deepEqual(rows, [
      { owner: 'u-one', tokens: 4 * PER_CALL },
      { owner: 'u-two', tokens: PER_CALL },
    ]);
  } finally {
    await proxy.closeAll();
  }
});

test('a raised budget lets calls through again and clears the notice', async () => {
  const { proxy, call } = hostProxy({ tokensPerTask: 0, tokensPerUserPerDay: 0 });
  try {
    // No limits at all: the gate does not even ask the database.
    assert.equal((await call(B)).status, 200);
  } finally {
    await proxy.closeAll();
  }
  const raised = hostProxy({ tokensPerTask: 100 * PER_CALL, tokensPerUserPerDay: 100 * PER_CALL });
  try {
    assert.equal((await raised.call(A)).status, 200);
    await waitFor('the notice to be cleared', async () => (await getTask(pool, A))?.budgetNotice === null);
  } finally {
    await raised.proxy.closeAll();
  }
});

test('answers are kept a few seconds (one query per task), and a database that does not answer stops nothing', async () => {
  const own = createPool(dbUrl);
  let queries = 0;
  const counted = new Proxy(own, {
    get(target, prop, receiver) {
      if (prop === 'query') queries++;
      return Reflect.get(target, prop, receiver);
    },
  });
  const gate = createBudgetGate({
    pool: counted,
    limits: { tokensPerTask: 1, tokensPerUserPerDay: 0 },
    logger: silent,
    ttlMs: 60_000,
  });
  const first = await Promise.all([gate.check(C), gate.check(C), gate.check(C)]);
  assert.ok(first.every((a) => !a.ok));
  // One read (and the notice written, as this refusal is new).
  assert.equal(queries, 2, 'concurrent checks share one query');
  await Promise.all([gate.check(C), gate.check(C)]);
  assert.equal(queries, 2, 'the answer is kept');
  const gone = createBudgetGate({
    pool: counted,
    limits: { tokensPerTask: 1_000_000, tokensPerUserPerDay: 0 },
    logger: silent,
    ttlMs: 0,
  });
  assert.deepEqual(await gone.check(C), { ok: true });
  await own.end();
  assert.deepEqual(await gone.check(C), { ok: true }, 'the last answer stands');
  assert.deepEqual(await gone.check(A), { ok: true }, 'no answer yet: the call goes');
});
