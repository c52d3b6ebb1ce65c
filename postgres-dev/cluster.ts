/**
 * A private PostgreSQL cluster in the state folder, for when LIA__DATABASE__URL is unset:
 * Debian's PostgreSQL server binaries (installed with apt-get where missing), loopback only, a
 * port chosen once and remembered. Connections over TCP need a password (scram-sha-256), kept
 * in `<state>/postgres/password` (0600): on a shared host another local user, or a guest of the
 * local driver, cannot walk in as superuser. The Unix socket (for the cluster's own tools) takes
 * only the `postgres` system user.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from '../system/procs.js';

const run = promisify(execFile);

export interface PrivateCluster {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

function findBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return undefined;
  const versions = fs
    .readdirSync(base)
    .filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], 'bin') : undefined;
}

async function installPostgres(progress: (m: string) => void): Promise<string> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'PostgreSQL server is not installed: run `sudo apt-get install postgresql` or set LIA__DATABASE__URL',
    );
  }
  progress('[postgres] installing Debian package postgresql (apt-get)…');
  const r1 = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
  const r2 =
    r1.status === 0
      ? spawnSync('apt-get', ['install', '-y', '-q', 'postgresql'], {
          stdio: 'inherit',
          env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        })
      : r1;
  const dir = findBinDir();
  if (r2.status !== 0 || !dir)
    throw new Error('could not install PostgreSQL with apt-get; set LIA__DATABASE__URL');
  return dir;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** PostgreSQL refuses to run as root: run its tools as the `postgres` system user then. */
function asDbUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function pg(bin: string, tool: string, args: string[]): Promise<string> {
  const [cmd, a] = asDbUser(path.join(bin, tool), args);
  const { stdout } = await run(cmd, a, { maxBuffer: 1 << 20 });
  return stdout;
}

async function isReady(bin: string, port: number, socketDir: string): Promise<boolean> {
  try {
    await run(path.join(bin, 'pg_isready'), ['-q', '-h', socketDir, '-p', String(port)]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (or reuses, when already running) the private cluster under `<stateDir>/postgres`.
 * `stop()` stops it if this process owns it: it started it, or found it left running by a
 * process that is gone (a run killed before it could stop it), so nothing is left behind.
 * A cluster whose starter still runs is shared and left to that process.
 */
export async function ensurePrivateCluster(
  stateDir: string,
  progress: (m: string) => void = () => {},
): Promise<PrivateCluster> {
  const root = path.join(stateDir, 'postgres');
  const dataDir = path.join(root, 'data');
  const socketDir = path.join(root, 'run');
  const portFile = path.join(root, 'port');
  const ownerFile = path.join(root, 'owner.pid');
  const bin = findBinDir() ?? (await installPostgres(progress));
  const stop = async () => {
    await pg(bin, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']).catch(() => {});
    fs.rmSync(ownerFile, { force: true });
  };
  fs.mkdirSync(socketDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // The postgres user must reach the folder; the state folder itself stays root's.
    for (let d = root; d !== path.dirname(d) && d.startsWith(stateDir); d = path.dirname(d)) {
      fs.chmodSync(d, fs.statSync(d).mode | 0o711);
    }
    fs.chmodSync(stateDir, fs.statSync(stateDir).mode | 0o711);
    for (let d = path.dirname(stateDir); d !== '/'; d = path.dirname(d)) {
      const m = fs.statSync(d).mode;
      if ((m & 0o001) === 0) fs.chmodSync(d, m | 0o001);
    }
    spawnSync('chown', ['-R', 'postgres:postgres', root]);
  }
  let port = fs.existsSync(portFile) ? Number(fs.readFileSync(portFile, 'utf8')) : 0;
  const password = keptPassword(path.join(root, 'password'));
  const url = () => `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/lia`;
  if (port && (await isReady(bin, port, socketDir))) {
    const owner = fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, 'utf8')) : 0;
    if (owner && owner !== process.pid && isAlive(owner))
      return { url: url(), dataDir, stop: async () => {} };
    progress(`[postgres] taking over the private cluster on 127.0.0.1:${port} (its starter is gone)`);
    fs.writeFileSync(ownerFile, String(process.pid));
    return { url: url(), dataDir, stop };
  }
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    progress(`[postgres] creating a private cluster in ${dataDir}…`);
    await pg(bin, 'initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
  }
  if (!port) {
    port = await freePort();
    fs.writeFileSync(portFile, String(port));
  }
  progress(`[postgres] starting on 127.0.0.1:${port}…`);
  const logFile = path.join(root, 'postgres.log');
  if (process.getuid?.() === 0 && !fs.existsSync(logFile)) {
    fs.writeFileSync(logFile, '');
    spawnSync('chown', ['postgres:postgres', logFile]);
  }
  await pg(bin, 'pg_ctl', [
    '-D',
    dataDir,
    '-l',
    logFile,
    '-w',
    '-t',
    '60',
    '-o',
    `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c max_connections=200`,
    'start',
  ]);
  await requirePassword(bin, dataDir, socketDir, port, password);
  const exists = await pg(bin, 'psql', [
    '-h',
    socketDir,
    '-p',
    String(port),
    '-U',
    'postgres',
    '-tAc',
    "SELECT 1 FROM pg_database WHERE datname = 'lia'",
  ]);
  if (!exists.trim()) {
    await pg(bin, 'createdb', ['-h', socketDir, '-p', String(port), '-U', 'postgres', 'lia']);
  }
  fs.writeFileSync(ownerFile, String(process.pid));
  return { url: url(), dataDir, stop };
}

/** The cluster's password, made once (32 random bytes) and kept readable by Lia's user only. */
function keptPassword(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const pw = randomBytes(32).toString('base64url');
  fs.writeFileSync(file, `${pw}\n`, { mode: 0o600 });
  return pw;
}

/**
 * The superuser's password set, and TCP connections held to it (a cluster made before this
 * trusted every local user): pg_hba.conf rewritten and reloaded when it still says `trust`.
 */
async function requirePassword(
  bin: string,
  dataDir: string,
  socketDir: string,
  port: number,
  password: string,
) {
  // On stdin, not the command line: another local user would see it in `ps`.
  const sql = `ALTER USER postgres PASSWORD '${password.replace(/'/g, "''")}';\n`;
  const [cmd, args] = asDbUser(path.join(bin, 'psql'), [
    '-h',
    socketDir,
    '-p',
    String(port),
    '-U',
    'postgres',
    '-d',
    'postgres',
    '-qtA',
    '-v',
    'ON_ERROR_STOP=1',
    '-f',
    '-',
  ]);
  const r = spawnSync(cmd, args, { input: sql, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not set the private cluster's password: ${r.stderr.trim()}`);
  const hba = path.join(dataDir, 'pg_hba.conf');
  const rules = [
    '# Written by Lia (postgres-dev/cluster.ts): the socket for the postgres system user, TCP with the password.',
    'local all postgres peer',
    'host all all 127.0.0.1/32 scram-sha-256',
    'host all all ::1/128 scram-sha-256',
    '',
  ].join('\n');
  if (fs.readFileSync(hba, 'utf8') === rules) return;
  fs.writeFileSync(hba, rules);
  if (process.getuid?.() === 0) spawnSync('chown', ['postgres:postgres', hba]);
  fs.chmodSync(hba, 0o600);
  await pg(bin, 'pg_ctl', ['-D', dataDir, 'reload']);
}

/** Creates a fresh database on the cluster behind `url` and returns its URL (for isolated tests). */
export async function createDatabase(url: string, name: string): Promise<string> {
  const { default: pgmod } = await import('pg');
  const client = new pgmod.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pgmod.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${pgmod.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
