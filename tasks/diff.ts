/**
 * A task's diff for the API (issue 20): from a running task, a fresh one — asked of the host's
 * pump through PostgreSQL, which has the guest take it — waited for a bounded time; otherwise
 * (or when the guest does not answer in time) the last one the guest gave, marked as such.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from '../common/db/pool.js';
import { requestDiff, type StoredDiff, storedDiff } from '../common/db/task-diffs.js';
import type { TaskRow } from '../common/db/tasks.js';
import { type DiffView, diffStat } from '../common/diff.js';
import { TaskError } from './errors.js';

/** git in a guest under software emulation, on a large tree, takes a while. */
export const DIFF_WAIT_MS = 45_000;
const POLL_MS = 200;

export async function taskDiff(
  pool: Pool,
  row: TaskRow,
  o: { fresh?: boolean; waitMs?: number } = {},
): Promise<DiffView> {
  const taskId = row.id;
  if (!row.repoOwner)
    throw new TaskError('invalid', `task ${taskId} was spawned without a repository: it has no diff`);
  let note: string | undefined;
  if (row.status === 'running' && o.fresh !== false) {
    const asked = await requestDiff(pool, taskId);
    const waitMs = o.waitMs ?? DIFF_WAIT_MS;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const s = await storedDiff(pool, taskId);
      if (s?.takenAt && s.takenAt >= asked) {
        if (!s.error && s.doc) return view(taskId, s, true);
        note = `the guest could not take a fresh diff: ${s.error}`;
        break;
      }
      if (Date.now() > deadline) {
        note = `the guest did not answer within ${Math.round(waitMs / 1000)} s`;
        break;
      }
      await sleep(POLL_MS);
    }
  } else if (row.status !== 'running') {
    note = `task ${taskId} is ${row.status}`;
  }
  const s = await storedDiff(pool, taskId);
  if (!s?.doc) {
    const resume = row.status === 'suspended' ? '; resume it to see its diff' : '';
    throw new TaskError(
      row.status === 'running' ? 'unavailable' : 'conflict',
      `${note ?? `task ${taskId} has no diff yet`}${resume}`,
    );
  }
  return view(taskId, s, false, `${note}: this is the diff its guest gave last`);
}

function view(taskId: string, s: StoredDiff, fresh: boolean, note?: string): DiffView {
  const doc = s.doc!;
  return {
    taskId,
    ...doc,
    takenAt: (s.docAt ?? s.takenAt ?? new Date(0)).toISOString(),
    fresh,
    ...(note ? { note } : {}),
    stat: diffStat(doc),
  };
}
