/**
 * A task's working-tree diff against the base it was checked out from (issue 20): taken in the
 * guest by the sidecar on demand (git, as the agent's user), carried to the host in one frame,
 * checked here, kept in PostgreSQL (the last one per task), and shown on the task page and, as a
 * stat, in the thread. Everything in it came from the guest: hostile until this schema passed it.
 */
import { z } from 'zod';
import { DIFF_LIMITS } from './diff-limits.js';

export { DIFF_LIMITS };

const count = z.number().int().min(0).max(1e9);

export const diffFileSchema = z.object({
  path: z.string().min(1).max(DIFF_LIMITS.path),
  /** A rename's old path. */
  from: z.string().min(1).max(DIFF_LIMITS.path).optional(),
  /** Lines; null for a binary file. */
  added: count.nullable(),
  deleted: count.nullable(),
});

/** What the sidecar sends (the body of `diff-result`, JSON). */
export const guestDiffSchema = z.object({
  /** The commit the task's branch started from, and the branch's head (hex object names). */
  base: z.string().regex(/^[0-9a-f]{40,64}$/),
  head: z.string().regex(/^[0-9a-f]{40,64}$/),
  files: z.array(diffFileSchema).max(DIFF_LIMITS.files),
  /** Files changed beyond the ones listed. */
  moreFiles: count,
  patch: z.string().max(DIFF_LIMITS.patchBytes),
  truncated: z.boolean(),
});

export type DiffFile = z.infer<typeof diffFileSchema>;
export type GuestDiff = z.infer<typeof guestDiffSchema>;

export interface DiffStat {
  files: number;
  added: number;
  deleted: number;
}

/** A task's diff as the API returns it. */
export interface DiffView extends GuestDiff {
  taskId: string;
  /** When the guest took it (ISO). */
  takenAt: string;
  /** False when this is the last one taken (the task is suspended, or the guest did not answer). */
  fresh: boolean;
  /** Why it is not fresh. */
  note?: string;
  stat: DiffStat;
}

export function diffStat(d: Pick<GuestDiff, 'files' | 'moreFiles'>): DiffStat {
  let added = 0;
  let deleted = 0;
  for (const f of d.files) {
    added += f.added ?? 0;
    deleted += f.deleted ?? 0;
  }
  return { files: d.files.length + d.moreFiles, added, deleted };
}

/** "3 files changed, +20 −4" */
export function diffStatText(s: DiffStat): string {
  if (!s.files) return 'no changes';
  return `${s.files} file${s.files === 1 ? '' : 's'} changed, +${s.added} −${s.deleted}`;
}
