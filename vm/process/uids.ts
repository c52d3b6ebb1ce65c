/**
 * A uid of its own for each VM's VMM, when Lia runs as root: one QEMU taken over by its guest
 * can then neither signal, trace nor read another's memory or files. The uids are plain numbers
 * from a range no account uses (LIA__VM__UID_BASE), claimed one file each (created exclusively,
 * holding the task id), so two boots never get the same one and a restarted worker sees them.
 * A uid some live process already runs as is skipped: another Lia host on the same machine (a
 * second state folder, the multi-host test) claims from its own folder, and must not share it.
 */
import fs from 'node:fs';
import path from 'node:path';

export class UidPool {
  constructor(
    private readonly dir: string,
    private readonly base: number,
    private readonly size = 10_000,
  ) {}

  /** The task's uid: the one it already holds, or the lowest free one. */
  claim(taskId: string): number {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const held = this.held(taskId);
    if (held !== undefined) return held;
    const running = runningUids();
    for (let uid = this.base; uid < this.base + this.size; uid++) {
      if (running.has(uid)) continue;
      try {
        fs.writeFileSync(path.join(this.dir, String(uid)), taskId, { flag: 'wx', mode: 0o600 });
        return uid;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new Error(`no free VM uid in ${this.base}–${this.base + this.size - 1}`);
  }

  held(taskId: string): number | undefined {
    if (!fs.existsSync(this.dir)) return undefined;
    for (const name of fs.readdirSync(this.dir)) {
      try {
        if (fs.readFileSync(path.join(this.dir, name), 'utf8') === taskId) return Number(name);
      } catch {}
    }
    return undefined;
  }

  /** The uid `from` holds is now `to`'s (a spare VM taken by a task). */
  rename(from: string, to: string): void {
    const uid = this.held(from);
    if (uid !== undefined) fs.writeFileSync(path.join(this.dir, String(uid)), to, { mode: 0o600 });
  }

  release(taskId: string): void {
    const uid = this.held(taskId);
    if (uid !== undefined) fs.rmSync(path.join(this.dir, String(uid)), { force: true });
  }
}

/** The real uids of the processes alive now. */
function runningUids(): Set<number> {
  const uids = new Set<number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m) uids.add(Number(m[1]));
    } catch {}
  }
  return uids;
}
