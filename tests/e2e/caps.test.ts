/**
 * Caps that keep one user, one task or one forgotten VM from holding Lia: a cap on open tasks
 * across all users (spawning is refused past it, with the reason), a task's lifetime cap and its
 * maximum suspended age (then it ends `terminated`, with the reason, and its VM is removed).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';

let s: TestStack;

before(async () => {
  s = await startTestStack('caps', {
    LIA__QUOTA__LIVE_TASKS_TOTAL: '3',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '2',
    LIA__VM__MAX_LIFETIME_HOURS: '0.008', // 28.8 s
    LIA__VM__MAX_SUSPENDED_HOURS: '0.002', // 7.2 s
  });
});
after(async () => s?.close());

test('open tasks past the cap for all users are refused; lifetime and suspended-age caps end tasks with the reason', async () => {
  const alice = taskOps(s, 'u-alice');
  const bob = taskOps(s, 'u-bob');
  const long = await alice.spawnShell(3600);
  const sleepy = await alice.spawnShell(2);
  const third = await bob.spawnShell(3600);
  const refused = await s.api('POST', '/api/v1/tasks', 'u-bob', { prompt: 'p', runtime: 'shell' });
  assert.equal(refused.status, 429);
  assert.match(refused.json.error.message, /Lia has 3 tasks open, its limit for all users/);

  // Suspended for longer than 7.2 s: it ends, and its VM goes.
  await alice.waitStatus(sleepy.taskId, 'suspended', 30_000);
  const v = await alice.waitStatus(sleepy.taskId, 'terminated', 30_000);
  assert.match(v.error ?? '', /stayed suspended for longer than 7 s; its VM was removed/);
  assert.equal(fs.existsSync(alice.vmDir(sleepy.taskId)), false);

  // Past its lifetime (28.8 s from its creation): it ends too, running or not.
  const l = await alice.waitStatus(long.taskId, 'terminated', 60_000);
  assert.match(l.error ?? '', /reached its lifetime cap \(29 s\)/);
  await s.api('DELETE', `/api/v1/tasks/${third.taskId}`, 'u-bob');
  await bob.waitStatus(third.taskId, /terminated/);
});
