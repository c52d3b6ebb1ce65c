/**
 * The VMM process: started detached (a worker restart leaves it running), in its VM's cgroup
 * from its first instruction, as the VM's own unprivileged user where Lia runs as root; found
 * again after a worker restart by its record (pid and start time: a reused pid is not it); and
 * killed with everything in its cgroup. Node.js has no pidfd, so the start time, read from
 * /proc, is what makes a pid mean one process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import type { CgroupSystem } from './cgroup.js';

export interface VmmRecord {
  pid: number;
  /** /proc/<pid>/stat field 22: the process's start time in clock ticks since boot. */
  start: number;
}

/** The start time of a live (non-zombie) process. */
export function processStart(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') return undefined;
    return Number(f[19]);
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs (the same process, not a reuse of its pid). */
export function isRunning(rec: VmmRecord | undefined): boolean {
  return !!rec && processStart(rec.pid) === rec.start;
}

export function recordOf(pid: number): VmmRecord | undefined {
  const start = processStart(pid);
  return start === undefined ? undefined : { pid, start };
}

/** Enters the cgroup(s) named in $LIA_CGROUP_PROCS, then becomes the command. */
const ENTER =
  'for f in $LIA_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done; unset LIA_CGROUP_PROCS; exec "$@"';

export interface LaunchOptions {
  argv: string[];
  cwd: string;
  /** Its cgroup (made beforehand with its limits). */
  cgroup?: { system: CgroupSystem; rel: string };
  /** Run as this uid/gid, with no supplementary groups, capabilities or new privileges. */
  runAs?: { uid: number; gid: number };
  /** fds 1 and 2, then 3, 4, … in the child. */
  stdout: number;
  stderr: number;
  fds?: number[];
}

export interface Launched {
  record: VmmRecord;
  child: ChildProcess;
  /** Resolves with the exit code if the process ends (before or after it is up). */
  exited: Promise<number | null>;
}

export function launch(o: LaunchOptions): Launched {
  const argv = o.runAs
    ? [
        'setpriv',
        `--reuid=${o.runAs.uid}`,
        `--regid=${o.runAs.gid}`,
        '--clear-groups',
        '--no-new-privs',
        '--inh-caps=-all',
        '--bounding-set=-all',
        '--',
        ...o.argv,
      ]
    : o.argv;
  const child = spawn('/bin/sh', ['-c', ENTER, 'lia-vmm', ...argv], {
    cwd: o.cwd,
    detached: true,
    stdio: ['ignore', o.stdout, o.stderr, ...(o.fds ?? [])],
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      LIA_CGROUP_PROCS: o.cgroup ? o.cgroup.system.procsFiles(o.cgroup.rel).join(' ') : '',
    },
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(-1));
  });
  child.unref();
  const pid = child.pid;
  const record = pid ? recordOf(pid) : undefined;
  if (!pid || !record) throw new Error(`could not start ${o.argv[0]}`);
  return { record, child, exited };
}

/** Kills the process and everything in its cgroup, and waits until they are gone. */
export async function kill(
  rec: VmmRecord | undefined,
  cgroup: { system: CgroupSystem; rel: string } | undefined,
  timeoutMs = 10_000,
): Promise<void> {
  if (rec && isRunning(rec)) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {}
  }
  if (cgroup) await cgroup.system.kill(cgroup.rel, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  while (rec && isRunning(rec)) {
    if (Date.now() > deadline) throw new Error(`process ${rec.pid} did not exit after SIGKILL`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
