/**
 * Process lookups through /proc. The VM drivers must find every process of a task (an agent's
 * background jobs included) without trusting any record the agent could have changed.
 */
import fs from 'node:fs';

function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const f = statFields(pid);
  return f !== undefined && f[0] !== 'Z' && f[0] !== 'X';
}

/** Whether the process is stopped (SIGSTOP): state T. */
export function isStopped(pid: number): boolean {
  const f = statFields(pid);
  return f?.[0] === 'T';
}

/** Every live process whose session id is `sid` (the PTY's session: the agent and all it started). */
export function sessionPids(sid: number): number[] {
  if (!Number.isInteger(sid) || sid <= 0) return [];
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    // After ')': state, ppid, pgrp, session.
    if (f && f[3] === String(sid) && f[0] !== 'Z' && f[0] !== 'X') pids.push(Number(name));
  }
  return pids;
}

/** Direct and indirect children of `pid`. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Live processes that work inside `dir` — their working directory is in it, or their command
 * line names a path in it — each with the first path component under `dir` it names (a
 * task's folder), and whether that folder still exists.
 */
export function processesUnder(dir: string): { pid: number; entry: string; gone: boolean }[] {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  const out: { pid: number; entry: string; gone: boolean }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let where: string | undefined;
    try {
      // The working directory first: it follows a folder that was renamed (the local driver
      // renames a spare sidecar's folder to a task's), where the command line keeps the old name.
      const cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      if (cwd.startsWith(prefix)) where = cwd.slice(prefix.length);
      else {
        const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
        const at = cmd.indexOf(prefix);
        if (at >= 0) where = cmd.slice(at + prefix.length);
      }
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (!where || !isAlive(Number(name))) continue;
    const entry = where.split(/[/\s]/, 1)[0]!;
    if (!entry) continue;
    out.push({ pid: Number(name), entry, gone: !fs.existsSync(prefix + entry) });
  }
  return out;
}
