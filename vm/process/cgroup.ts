/**
 * A cgroup per VM: its VMM's CPU time, memory and task count are capped, and every process in
 * it can be found and killed by the cgroup alone (no pid file to trust). cgroup v2 where the
 * unified hierarchy has the cpu, memory and pids controllers; the v1 controllers otherwise (as
 * on hosts that still mount them, like this development machine).
 *
 * Paths are relative to the hierarchy's root: `lia/<host>/<task>`. Only root can make them;
 * without root (or without cgroups) there is no cgroup, and check-host says so.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupLimits {
  /** CPU time, in percent of one CPU (150 = one and a half). */
  cpuPercent: number;
  memoryBytes: number;
  /** Tasks (threads count) in the cgroup. */
  pids: number;
}

export interface CgroupSystem {
  readonly version: 1 | 2;
  /** Where it is mounted, for reports. */
  describe(): string;
  /** Makes the cgroup (and its parents) and sets its limits. */
  create(rel: string, limits: CgroupLimits): void;
  /** Makes `rel`'s parents, handing the controllers down to it (for a cgroup someone else makes). */
  ensureParents(rel: string): void;
  /** Files a process writes its own pid into to enter the cgroup (one per v1 controller). */
  procsFiles(rel: string): string[];
  /** The limits as the kernel has them. */
  limits(rel: string): Partial<CgroupLimits>;
  exists(rel: string): boolean;
  pids(rel: string): number[];
  /** Whether `pid` is in the cgroup. */
  contains(rel: string, pid: number): boolean;
  /** SIGKILLs everything in it and waits until it is empty. */
  kill(rel: string, timeoutMs?: number): Promise<void>;
  /** Removes it (it must be empty: kill first). */
  remove(rel: string): void;
  /** Child cgroups of `rel` (e.g. the tasks of a host). */
  children(rel: string): string[];
}

const CONTROLLERS = ['cpu', 'memory', 'pids'] as const;
const PERIOD_US = 100_000;

interface Mount {
  type: string;
  dir: string;
  options: string[];
}

function mounts(): Mount[] {
  try {
    return fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const f = l.split(' ');
        return { dir: f[1]!.replace(/\\040/g, ' '), type: f[2]!, options: f[3]!.split(',') };
      });
  } catch {
    return [];
  }
}

const read = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};
const write = (file: string, value: string): void => fs.writeFileSync(file, value);

function procsOf(file: string): number[] {
  return (read(file) ?? '')
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

async function killAll(list: () => number[], rel: string, timeoutMs: number, start?: () => void) {
  const deadline = Date.now() + timeoutMs;
  start?.();
  for (;;) {
    const pids = list();
    if (!pids.length) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    if (Date.now() > deadline) throw new Error(`cgroup ${rel}: ${pids.length} processes left after SIGKILL`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function checkRel(rel: string): string {
  if (!/^[a-z0-9_-]+(\/[a-zA-Z0-9_-]+)*$/.test(rel)) throw new Error(`bad cgroup path ${rel}`);
  return rel;
}

class CgroupV2 implements CgroupSystem {
  readonly version = 2 as const;
  constructor(private readonly root: string) {}
  describe(): string {
    return `cgroup v2 at ${this.root}`;
  }
  private dir(rel: string): string {
    return path.join(this.root, checkRel(rel));
  }
  ensureParents(rel: string): void {
    // Each level must hand the controllers down to the next (no process lives in these levels).
    let at = this.root;
    for (const part of checkRel(rel).split('/')) {
      const have = (read(path.join(at, 'cgroup.subtree_control')) ?? '').split(' ');
      const missing = CONTROLLERS.filter((c) => !have.includes(c));
      if (missing.length)
        write(path.join(at, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      at = path.join(at, part);
      if (at !== this.dir(rel)) fs.mkdirSync(at, { recursive: true });
    }
  }
  create(rel: string, l: CgroupLimits): void {
    this.ensureParents(rel);
    const at = this.dir(rel);
    fs.mkdirSync(at, { recursive: true });
    write(path.join(at, 'cpu.max'), `${Math.round((l.cpuPercent / 100) * PERIOD_US)} ${PERIOD_US}`);
    write(path.join(at, 'memory.max'), String(l.memoryBytes));
    if (fs.existsSync(path.join(at, 'memory.swap.max'))) write(path.join(at, 'memory.swap.max'), '0');
    write(path.join(at, 'pids.max'), String(l.pids));
  }
  procsFiles(rel: string): string[] {
    return [path.join(this.dir(rel), 'cgroup.procs')];
  }
  limits(rel: string): Partial<CgroupLimits> {
    const d = this.dir(rel);
    const cpu = read(path.join(d, 'cpu.max'))?.split(' ');
    const mem = read(path.join(d, 'memory.max'));
    const pids = read(path.join(d, 'pids.max'));
    return {
      cpuPercent: cpu && cpu[0] !== 'max' ? (Number(cpu[0]) / Number(cpu[1])) * 100 : undefined,
      memoryBytes: mem && mem !== 'max' ? Number(mem) : undefined,
      pids: pids && pids !== 'max' ? Number(pids) : undefined,
    };
  }
  exists(rel: string): boolean {
    return fs.existsSync(this.dir(rel));
  }
  pids(rel: string): number[] {
    return procsOf(path.join(this.dir(rel), 'cgroup.procs'));
  }
  contains(rel: string, pid: number): boolean {
    return this.pids(rel).includes(pid);
  }
  async kill(rel: string, timeoutMs = 10_000): Promise<void> {
    if (!this.exists(rel)) return;
    const killFile = path.join(this.dir(rel), 'cgroup.kill');
    await killAll(
      () => this.pids(rel),
      rel,
      timeoutMs,
      () => {
        if (fs.existsSync(killFile)) write(killFile, '1');
      },
    );
  }
  remove(rel: string): void {
    if (this.exists(rel)) fs.rmdirSync(this.dir(rel));
  }
  children(rel: string): string[] {
    const d = this.dir(rel);
    if (!fs.existsSync(d)) return [];
    return fs
      .readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  }
}

class CgroupV1 implements CgroupSystem {
  readonly version = 1 as const;
  constructor(private readonly mountOf: Record<(typeof CONTROLLERS)[number], string>) {}
  describe(): string {
    return `cgroup v1 (${CONTROLLERS.map((c) => `${c} at ${this.mountOf[c]}`).join(', ')})`;
  }
  private dirs(rel: string): string[] {
    checkRel(rel);
    return [...new Set(CONTROLLERS.map((c) => path.join(this.mountOf[c], rel)))];
  }
  private d(c: (typeof CONTROLLERS)[number], rel: string): string {
    return path.join(this.mountOf[c], checkRel(rel));
  }
  ensureParents(rel: string): void {
    for (const d of this.dirs(rel)) fs.mkdirSync(path.dirname(d), { recursive: true });
  }
  create(rel: string, l: CgroupLimits): void {
    for (const d of this.dirs(rel)) fs.mkdirSync(d, { recursive: true });
    write(path.join(this.d('cpu', rel), 'cpu.cfs_period_us'), String(PERIOD_US));
    write(
      path.join(this.d('cpu', rel), 'cpu.cfs_quota_us'),
      String(Math.round((l.cpuPercent / 100) * PERIOD_US)),
    );
    const mem = this.d('memory', rel);
    write(path.join(mem, 'memory.limit_in_bytes'), String(l.memoryBytes));
    // With swap accounting, memory+swap at the same limit: no swapping past it.
    if (fs.existsSync(path.join(mem, 'memory.memsw.limit_in_bytes')))
      write(path.join(mem, 'memory.memsw.limit_in_bytes'), String(l.memoryBytes));
    write(path.join(this.d('pids', rel), 'pids.max'), String(l.pids));
  }
  procsFiles(rel: string): string[] {
    return this.dirs(rel).map((d) => path.join(d, 'cgroup.procs'));
  }
  limits(rel: string): Partial<CgroupLimits> {
    const quota = Number(read(path.join(this.d('cpu', rel), 'cpu.cfs_quota_us')));
    const period = Number(read(path.join(this.d('cpu', rel), 'cpu.cfs_period_us')));
    const mem = Number(read(path.join(this.d('memory', rel), 'memory.limit_in_bytes')));
    const pids = read(path.join(this.d('pids', rel), 'pids.max'));
    return {
      cpuPercent: quota > 0 && period > 0 ? (quota / period) * 100 : undefined,
      memoryBytes: mem > 0 && mem < 2 ** 62 ? mem : undefined,
      pids: pids && pids !== 'max' ? Number(pids) : undefined,
    };
  }
  exists(rel: string): boolean {
    return this.dirs(rel).some((d) => fs.existsSync(d));
  }
  pids(rel: string): number[] {
    return [...new Set(this.procsFiles(rel).flatMap(procsOf))];
  }
  contains(rel: string, pid: number): boolean {
    // In every controller's group, or it escaped one of the limits.
    return this.procsFiles(rel).every((f) => procsOf(f).includes(pid));
  }
  async kill(rel: string, timeoutMs = 10_000): Promise<void> {
    if (!this.exists(rel)) return;
    // Frozen first where the freezer is mounted would be tidier; QEMU cannot fork, so a
    // SIGKILL sweep until the groups are empty is enough.
    await killAll(() => this.pids(rel), rel, timeoutMs);
  }
  remove(rel: string): void {
    for (const d of this.dirs(rel)) if (fs.existsSync(d)) fs.rmdirSync(d);
  }
  children(rel: string): string[] {
    const d = this.d('pids', rel);
    if (!fs.existsSync(d)) return [];
    return fs
      .readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  }
}

/** This host's cgroups, or why there are none Lia can use. */
export function detectCgroups(): { system?: CgroupSystem; reason: string } {
  const all = mounts();
  const v2 = all.find((m) => m.type === 'cgroup2');
  if (v2) {
    const have = (read(path.join(v2.dir, 'cgroup.controllers')) ?? '').split(' ');
    if (CONTROLLERS.every((c) => have.includes(c))) {
      if (!canWrite(v2.dir)) return { reason: `cgroup v2 at ${v2.dir} is not writable (not root?)` };
      return { system: new CgroupV2(v2.dir), reason: `cgroup v2 at ${v2.dir}` };
    }
  }
  const v1: Partial<Record<(typeof CONTROLLERS)[number], string>> = {};
  for (const m of all)
    if (m.type === 'cgroup') for (const c of CONTROLLERS) if (m.options.includes(c)) v1[c] = m.dir;
  if (CONTROLLERS.every((c) => v1[c])) {
    const sys = new CgroupV1(v1 as Record<(typeof CONTROLLERS)[number], string>);
    if (!CONTROLLERS.every((c) => canWrite(v1[c]!)))
      return { reason: `${sys.describe()} is not writable (not root?)` };
    return { system: sys, reason: sys.describe() };
  }
  return {
    reason: v2
      ? `cgroup v2 at ${v2.dir} lacks the ${CONTROLLERS.filter((c) => !(read(path.join(v2.dir, 'cgroup.controllers')) ?? '').includes(c)).join(', ')} controller(s), and no v1 hierarchy has them`
      : 'no cgroup hierarchy with the cpu, memory and pids controllers is mounted',
  };
}

function canWrite(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
