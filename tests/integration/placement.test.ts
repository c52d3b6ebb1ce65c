/**
 * Placement: a host takes at most its VM slots (a suspended VM still holds one); a task that
 * finds no room waits in `pending`, first come first served across users, with its place shown,
 * and starts as soon as a slot frees; a stop works while it waits; it fails, with the reason,
 * only past the queue's maximum wait; a VM no host could ever hold is refused at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let s: TestStack;

before(async () => {
  s = await startTestStack('placement', {
    LIA__HOST__MAX_VMS: '2',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '5',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '5',
    LIA__QUEUE__MAX_WAIT_MINUTES: '0.5',
    LIA__HOST__MEMORY_MIB: '2048',
  });
});
after(async () => {
  await s?.close();
});

const spawn = async (owner: string) => {
  const res = await s.api('POST', '/api/v1/tasks', owner, {
    prompt: 'p',
    runtime: 'shell',
    idleTimeoutSeconds: 600,
  });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return res.json.taskId as string;
};
const view = async (id: string, owner: string) => (await s.api('GET', `/api/v1/tasks/${id}`, owner)).json;
const settle = (id: string, owner: string, want: string[], ms = 30_000) =>
  waitFor(
    `task ${id} to be ${want.join(' or ')}`,
    async () => {
      const st = await view(id, owner);
      return want.includes(st.status) ? st : undefined;
    },
    ms,
    100,
  );

test('a full host queues the next tasks in order, shows their place, and starts each as a slot frees', async () => {
  const a = await spawn('u-ann');
  const b = await spawn('u-bob');
  await settle(a, 'u-ann', ['running']);
  await settle(b, 'u-bob', ['running']);
  // Three more, by three users: they wait, in the order they came.
  const c = await spawn('u-cid');
  await waitFor('c to be queued', async () => (await view(c, 'u-cid')).queue?.position === 1);
  const d = await spawn('u-dan');
  const e = await spawn('u-eve');
  await waitFor(
    'd and e to be queued',
    async () =>
      (await view(d, 'u-dan')).queue?.position === 2 && (await view(e, 'u-eve')).queue?.position === 3,
  );
  assert.equal((await view(c, 'u-cid')).status, 'pending');
  // A stop while it waits: e leaves the queue.
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${e}`, 'u-eve')).status, 202);
  await settle(e, 'u-eve', ['terminated']);
  // A slot frees: the head (c) starts, not d; d moves up.
  assert.equal((await s.api('DELETE', `/api/v1/tasks/${a}`, 'u-ann')).status, 202);
  await settle(c, 'u-cid', ['running']);
  assert.equal((await view(d, 'u-dan')).status, 'pending');
  await waitFor('d to be next', async () => (await view(d, 'u-dan')).queue?.position === 1);
  // Waiting past the maximum (30 s here): it fails, with the reason.
  const failed = await settle(d, 'u-dan', ['failed'], 60_000);
  assert.match(failed.error, /no room for the task within 30 s \(every host is full/);
  for (const [id, owner] of [
    [b, 'u-bob'],
    [c, 'u-cid'],
  ] as const) {
    await s.api('DELETE', `/api/v1/tasks/${id}`, owner);
    await settle(id, owner, ['terminated']);
  }
});

test('a VM no host could ever hold is refused at once, with the reason', async () => {
  // The service sizes VMs from its configuration: ask for more memory than the host has.
  const before = s.config.vm.memory_mib;
  s.config.vm.memory_mib = 4096;
  try {
    const id = await spawn('u-big');
    const v = await settle(id, 'u-big', ['failed', 'running']);
    assert.equal(v.status, 'failed', JSON.stringify(v));
    assert.match(v.error, /no host can hold a VM of 1 vCPU and 4096 MiB \(the largest: \d+ vCPU, 2048 MiB\)/);
  } finally {
    s.config.vm.memory_mib = before;
  }
});
