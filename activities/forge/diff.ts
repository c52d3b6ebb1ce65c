/**
 * The host's side of a task's diff (issue 20): asks the guest's sidecar for it, checks what comes
 * back (hostile: a guest may send any JSON up to the frame limit), and keeps it in PostgreSQL.
 * The pump answers the API's asks with it (DiffLink), and the pull request takes one after its
 * push, for the stat in the thread.
 */
import { randomInt } from 'node:crypto';
import type { Pool } from '../../common/db/pool.js';
import { pendingDiffRequest, saveDiff } from '../../common/db/task-diffs.js';
import { DIFF_LIMITS, type GuestDiff, guestDiffSchema } from '../../common/diff.js';
import { coalesced } from '../../common/rerun.js';
import type { SidecarConnection } from '../../vm/sidecar/client.js';

/** The guest's limit, and time for the frame to cross a slow channel. */
const ANSWER_MS = DIFF_LIMITS.guestMs + 15_000;

export type DiffTaken = { doc: GuestDiff } | { error: string };

/** Has the guest take the diff; never throws for what the guest did (an error says it). */
export async function takeDiff(conn: SidecarConnection, timeoutMs = ANSWER_MS): Promise<DiffTaken> {
  const id = randomInt(1, 2 ** 31);
  const answer = conn.waitForFrame((m) => m.type === 'diff-result' && m.id === id, timeoutMs);
  conn.send({ type: 'git', id, op: 'diff' });
  let frame: Awaited<typeof answer>;
  try {
    frame = await answer;
  } catch (err) {
    return { error: `the guest gave no diff: ${(err as Error).message}` };
  }
  const m = frame.header as { ok: boolean; error?: string };
  if (!m.ok) return { error: m.error ?? 'the guest could not take the diff' };
  return parseGuestDiff(frame.body);
}

/** The body of a `diff-result`, checked: the diff, or why it was refused. */
export function parseGuestDiff(body: Buffer): DiffTaken {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: 'the guest sent a diff that is not JSON' };
  }
  const r = guestDiffSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { error: `the guest sent a bad diff (${i?.path.join('.') || 'root'}: ${i?.message})` };
  }
  return { doc: r.data };
}

/**
 * In the output pump: answers the API's asks for a fresh diff (written to PostgreSQL, woken on
 * the diff channel). One at a time; an ask made while one runs is answered by the next.
 */
export class DiffLink {
  constructor(
    private readonly pool: Pool,
    private readonly conn: SidecarConnection,
    private readonly taskId: string,
    private readonly fail: (err: unknown) => void,
  ) {}

  readonly deliver = coalesced(async () => {
    try {
      while (!this.conn.isClosed && (await pendingDiffRequest(this.pool, this.taskId))) {
        const taken = await takeDiff(this.conn);
        if (this.conn.isClosed && 'error' in taken) return; // the next pump answers it
        await saveDiff(this.pool, this.taskId, taken);
      }
    } catch (err) {
      this.fail(err);
    }
  });
}
