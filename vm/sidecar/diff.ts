/**
 * The task's diff, taken in the guest (issue 20): the working tree — uncommitted and untracked
 * files too, .gitignore honoured — against the commit the task's branch started from. It reads
 * through a throwaway index, so the agent's own index (what it staged) is left as it was. Git
 * runs as the agent's user; its output is read only up to the limits the host enforces again.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DIFF_LIMITS } from '../../common/diff-limits.js';
import { type GitUser, spawnGit } from './repo.js';

export type DiffAnswer = { ok: true; body: Buffer } | { ok: false; error: string };

interface Captured {
  code: number | null;
  out: Buffer;
  /** More came than `maxBytes` (git was stopped). */
  over: boolean;
  err: string;
}

/** Runs git and keeps the first `maxBytes` of its stdout (then stops it), and its stderr's tail. */
function captureGit(
  args: string[],
  o: { cwd: string; user?: GitUser; env?: Record<string, string>; maxBytes: number; deadline: number },
): Promise<Captured> {
  return new Promise((resolve) => {
    const child = spawnGit(args, o);
    child.stdin.end();
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      if (over) return;
      const room = o.maxBytes - size;
      if (b.length > room) {
        parts.push(b.subarray(0, room));
        size += room;
        over = true;
        child.kill('SIGKILL');
        return;
      }
      parts.push(b);
      size += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-2000);
    });
    const timer = setTimeout(
      () => {
        err += `\n(stopped after ${DIFF_LIMITS.guestMs / 1000} s)`;
        child.kill('SIGKILL');
      },
      Math.max(0, o.deadline - Date.now()),
    );
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, out: Buffer.concat(parts), over, err: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(parts), over, err });
    });
  });
}

/** `git diff --numstat -z` records: "added\tdeleted\tpath\0" or, for a rename, "a\td\t\0from\0to\0". */
export function parseNumstat(
  out: Buffer,
): { path: string; from?: string; added: number | null; deleted: number | null }[] {
  const fields = out.toString('utf8').split('\0');
  const files: { path: string; from?: string; added: number | null; deleted: number | null }[] = [];
  for (let i = 0; i < fields.length; i++) {
    const rec = fields[i]!;
    if (!rec) continue;
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(rec);
    if (!m) continue;
    const added = m[1] === '-' ? null : Number(m[1]);
    const deleted = m[2] === '-' ? null : Number(m[2]);
    if (m[3]) files.push({ path: m[3], added, deleted });
    else {
      const from = fields[++i];
      const to = fields[++i];
      if (from && to) files.push({ path: to, from, added, deleted });
    }
  }
  return files;
}

const OBJECT = /^[0-9a-f]{40,64}$/;

export async function workingDiff(
  repoDir: string | undefined,
  user: GitUser | undefined,
): Promise<DiffAnswer> {
  if (!repoDir) return { ok: false, error: 'this task has no checkout of its repository' };
  const deadline = Date.now() + DIFF_LIMITS.guestMs;
  const index = path.join(os.tmpdir(), `lia-diff-${randomBytes(8).toString('hex')}.index`);
  const git = (args: string[], maxBytes = 64 * 1024) =>
    captureGit(args, { cwd: repoDir, user, env: { GIT_INDEX_FILE: index }, maxBytes, deadline });
  const fail = (what: string, r: Captured): DiffAnswer => ({
    ok: false,
    error: `${what} failed (git exited with ${r.code}): ${r.err.trim().slice(-1500)}`,
  });
  try {
    const head = await git(['rev-parse', '--verify', 'HEAD']);
    if (head.code !== 0) return fail('git rev-parse HEAD', head);
    let base = (await git(['config', '--get', 'lia.base'])).out.toString().trim();
    if (!OBJECT.test(base)) {
      // A checkout from before the base was recorded: where the branch left the remote's default.
      const mb = await git(['merge-base', 'HEAD', 'refs/remotes/origin/HEAD']);
      base = mb.out.toString().trim();
      if (mb.code !== 0 || !OBJECT.test(base)) return fail('finding the base commit', mb);
    }
    const read = await git(['read-tree', 'HEAD']);
    if (read.code !== 0) return fail('git read-tree', read);
    const add = await git(['add', '-A']);
    if (add.code !== 0) return fail('git add -A (into a scratch index)', add);
    const common = ['diff', '--cached', '--no-color', '--no-ext-diff', '--no-textconv', '-M', base, '--'];
    const numstat = await git([...common.slice(0, -2), '--numstat', '-z', base, '--'], 4 * 1024 * 1024);
    if (numstat.code !== 0 && !numstat.over) return fail('git diff --numstat', numstat);
    const patch = await git(common, DIFF_LIMITS.patchBytes + 1);
    if (patch.code !== 0 && !patch.over) return fail('git diff', patch);

    const all = parseNumstat(numstat.out);
    const files: typeof all = [];
    let pathBytes = 0;
    for (const f of all) {
      const bytes = Buffer.byteLength(JSON.stringify(f));
      if (files.length >= DIFF_LIMITS.files || pathBytes + bytes > DIFF_LIMITS.pathBytes) break;
      if (f.path.length > DIFF_LIMITS.path || (f.from?.length ?? 0) > DIFF_LIMITS.path) break;
      files.push(f);
      pathBytes += bytes;
    }
    let text = patch.out;
    let truncated = patch.over || numstat.over;
    // Cut at the last whole line within the limit (so never inside a UTF-8 sequence).
    const cutTo = (limit: number) => {
      text = text.subarray(0, text.lastIndexOf(0x0a, limit - 1) + 1);
      truncated = true;
    };
    if (patch.over) cutTo(DIFF_LIMITS.patchBytes);
    for (;;) {
      const body = Buffer.from(
        JSON.stringify({
          base,
          head: head.out.toString().trim(),
          files,
          moreFiles: all.length - files.length,
          patch: text.toString('utf8'),
          truncated,
        }),
      );
      // JSON escapes control bytes six-fold: the frame must still fit what the host takes.
      if (body.length <= DIFF_LIMITS.bodyBytes || !text.length) return { ok: true, body };
      cutTo(Math.floor(text.length / 2));
    }
  } finally {
    fs.rmSync(index, { force: true });
    fs.rmSync(`${index}.lock`, { force: true });
  }
}
