/**
 * Placement respects the host's maximum of VMs: a suspended VM still holds its slot, a full host
 * refuses with a reason that says so, and a slot freed by terminate is taken again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

let s: TestStack;
const OWNER = 'u-full';

before(async () => {
  s = await startTestStack('placement', { LIA__HOST__MAX_VMS: '1' });
});
after(async () => {
  await s?.close();
});

const spawn = async () => {
  const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'p', runtime: 'shell' });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return res.json.taskId as string;
};
const status = async (id: string) => (await s.api('GET', `/api/v1/tasks/${id}`, OWNER)).json;
const settle = (id: string, want: string[]) =>
  waitFor(
    `task ${id} to be ${want.join(' or ')}`,
    async () => {
      const st = await status(id);
      return want.includes(st.status) ? st : undefined;
    },
    30_000,
    100,
  );

test('a full host refuses clearly; a freed slot is taken again', async () => {
  const first = await spawn();
  await settle(first, ['running']);

  const second = await spawn();
  const refused = await settle(second, ['failed', 'running']);
  assert.equal(refused.status, 'failed', JSON.stringify(refused));
  assert.match(refused.error, new RegExp(`every live host is full \\(${s.config.host.id}: 1/1 VMs\\)`));

  assert.equal((await s.api('DELETE', `/api/v1/tasks/${first}`, OWNER)).status, 202);
  await settle(first, ['terminated']);
  const third = await spawn();
  await settle(third, ['running']);
  await s.api('DELETE', `/api/v1/tasks/${third}`, OWNER);
  await settle(third, ['terminated']);
});
