/**
 * A stand-in for Firecracker's jailer, doing what jailer.md (v1.16.1) says the jailer does, in
 * that order, on this machine's real file system and cgroups: validate the id and the exec
 * file; create <chroot base>/<exec name>/<id>/root (nothing if it exists); copy the exec file
 * in; create the cgroup <controller root>/<parent cgroup>/<id> (v1: per controller found in
 * /proc/mounts; v2: the unified hierarchy), write the --cgroup values and its own pid there;
 * mknod /dev/kvm and /dev/net/tun in the jail and chown them and the jail root to uid:gid;
 * with --new-pid-ns fork the VMM, store its pid in <root>/<exec name>.pid and exit. (It cannot
 * pivot_root or make a pid namespace from Node.js: the VMM stand-in resolves its paths inside
 * the jail itself, and drops to uid:gid first thing, as the jailer does before exec.)
 *   jailer --id ID --exec-file FILE --uid U --gid G [--chroot-base-dir DIR] [--cgroup-version 1|2]
 *          [--parent-cgroup REL] [--cgroup FILE=VALUE]… [--new-pid-ns] [--daemonize] -- ARGS…
 * LIA_FC_STANDIN_LOG (read here, not passed on: the jailer clears the environment) names a file
 * where the VMM logs each API request it served.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const fail = (msg: string): never => {
  process.stderr.write(`jailer: ${msg}\n`);
  process.exit(1);
};

if (process.argv.includes('--version')) {
  process.stdout.write("Jailer v1.16.1 (Lia's stand-in)\n");
  process.exit(0);
}
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash >= 0 ? argv.slice(0, dash) : argv;
const rest = dash >= 0 ? argv.slice(dash + 1) : [];
const opt: Record<string, string> = {};
const cgroups: string[] = [];
const flags = new Set<string>();
for (let i = 0; i < own.length; i++) {
  const a = own[i]!;
  if (a === '--new-pid-ns' || a === '--daemonize') flags.add(a);
  else if (a === '--cgroup') cgroups.push(own[++i] ?? fail('--cgroup needs a value'));
  else if (a.startsWith('--')) opt[a.slice(2)] = own[++i] ?? fail(`${a} needs a value`);
  else fail(`unexpected argument ${a}`);
}
const id = opt.id ?? fail('--id is required');
if (!/^[a-zA-Z0-9-]{1,64}$/.test(id)) fail(`invalid id ${id}`);
const exec = opt['exec-file'] ?? fail('--exec-file is required');
if (!fs.existsSync(exec)) fail(`exec file ${exec} does not exist`);
const execName = path.basename(exec);
if (!execName.includes('firecracker')) fail('the exec file name must contain "firecracker"');
const uid = Number(opt.uid ?? fail('--uid is required'));
const gid = Number(opt.gid ?? fail('--gid is required'));
const base = opt['chroot-base-dir'] ?? '/srv/jailer';
const version = opt['cgroup-version'] ?? '1';
const parent = opt['parent-cgroup'] ?? execName;
const log = process.env.LIA_FC_STANDIN_LOG;

const chroot = path.join(base, execName, id, 'root');
fs.mkdirSync(chroot, { recursive: true });
fs.copyFileSync(exec, path.join(chroot, execName));
fs.chmodSync(path.join(chroot, execName), 0o755);

// cgroups, as the jailer makes them: the values first, then its own pid (its child inherits).
const mounts = fs
  .readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .filter((f) => f.length > 3);
const dirs = new Set<string>();
for (const c of cgroups) {
  const eq = c.indexOf('=');
  if (eq < 0) fail(`bad --cgroup ${c}`);
  const file = c.slice(0, eq);
  const value = c.slice(eq + 1);
  const controller = file.split('.')[0]!;
  let root: string | undefined;
  if (version === '2') root = mounts.find((m) => m[2] === 'cgroup2')?.[1];
  else root = mounts.find((m) => m[2] === 'cgroup' && m[3]!.split(',').includes(controller))?.[1];
  if (!root) fail(`no cgroup v${version} hierarchy has the ${controller} controller`);
  const dir = path.join(root!, parent, id);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.writeFileSync(path.join(dir, file), value);
  } catch (err) {
    fail(`writing ${value} to ${path.join(dir, file)}: ${(err as Error).message}`);
  }
  dirs.add(dir);
}
for (const dir of dirs)
  fs.writeFileSync(path.join(dir, version === '2' ? 'cgroup.procs' : 'tasks'), String(process.pid));

// The device nodes Firecracker opens, and the jail root, the VM user's.
fs.mkdirSync(path.join(chroot, 'dev', 'net'), { recursive: true });
for (const [node, major, minor] of [
  ['dev/kvm', 10, 232],
  ['dev/net/tun', 10, 200],
] as const) {
  const p = path.join(chroot, node);
  if (!fs.existsSync(p)) execFileSync('mknod', [p, 'c', String(major), String(minor)]);
  fs.chownSync(p, uid, gid);
}
fs.chownSync(chroot, uid, gid);

const vmm = path.join(import.meta.dirname, 'firecracker.ts');
const loader = path.resolve(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'node_modules',
  'tsx',
  'dist',
  'loader.mjs',
);
const child = spawn(
  process.execPath,
  [
    '--import',
    loader,
    vmm,
    '--chroot',
    chroot,
    '--uid',
    String(uid),
    '--gid',
    String(gid),
    '--id',
    id,
    ...rest,
  ],
  {
    cwd: chroot,
    // The jailer clears the environment; the log is the stand-in's own addition.
    env: log ? { LIA_FC_STANDIN_LOG: log } : {},
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: flags.has('--daemonize'),
  },
);
if (!flags.has('--new-pid-ns')) {
  // No fork: the jailer *is* the VMM (it execs). The stand-in waits for it instead.
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  fs.writeFileSync(path.join(chroot, `${execName}.pid`), String(child.pid));
  child.unref();
  process.exit(0);
}
