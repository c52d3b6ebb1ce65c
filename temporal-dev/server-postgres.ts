/**
 * The Temporal server itself (not the CLI's dev server) with PostgreSQL persistence, as a
 * self-hosted production cluster runs it: built from the Go module proxy (go.temporal.io/server,
 * the server and its SQL schema tool) into ~/.cache/lia/temporal-server/<version>/ on first use,
 * its two databases (temporal, temporal_visibility) made and migrated by the schema tool, one
 * process with all four services on loopback ports, the namespace and Lia's search attributes
 * registered. For tests of Lia against what production runs.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { isAlive } from '../system/procs.js';
import { cacheRoot, ensureTemporalCli } from './cli.js';
import { goInstall } from './go-install.js';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
const run = promisify(execFile);

export async function ensureTemporalServer(
  progress: (m: string) => void,
): Promise<{ server: string; sql: string }> {
  const dir = path.join(cacheRoot(), 'temporal-server', TEMPORAL_SERVER_VERSION);
  const server = path.join(dir, 'server');
  const sql = path.join(dir, 'sql');
  if (!fs.existsSync(server)) {
    progress(
      `[temporal] building the Temporal server ${TEMPORAL_SERVER_VERSION} from the Go module proxy (first run only, several minutes)…`,
    );
    await goInstall(
      'the Temporal server',
      'go.temporal.io/server/cmd/server',
      TEMPORAL_SERVER_VERSION,
      dir,
      progress,
    );
  }
  if (!fs.existsSync(sql)) {
    progress('[temporal] building its SQL schema tool…');
    await goInstall(
      'the Temporal SQL schema tool',
      'go.temporal.io/server/cmd/tools/sql',
      TEMPORAL_SERVER_VERSION,
      dir,
      progress,
    );
  }
  return { server, sql };
}

export interface PostgresTemporal {
  address: string;
  /** Kills the server with -9 (its state is PostgreSQL's). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and databases. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A free loopback port below 32768: the server keeps each membership port in a SMALLINT column
 * of cluster_membership, so the kernel's ephemeral range (32768+) fails at start.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

export async function startTemporalOnPostgres(o: {
  /** A PostgreSQL superuser URL (the databases are made on its cluster). */
  postgresUrl: string;
  /** Where the server's config and log go. */
  dir: string;
  namespace: string;
  searchAttributes: string[];
  progress: (m: string) => void;
}): Promise<PostgresTemporal> {
  const bins = await ensureTemporalServer(o.progress);
  const pg = new URL(o.postgresUrl);
  const password = decodeURIComponent(pg.password);
  const schemaEnv = { ...process.env, SQL_PASSWORD: password };
  const tool = (db: string, ...args: string[]) =>
    run(
      bins.sql,
      [
        '--plugin',
        'postgres12',
        '--ep',
        pg.hostname,
        '-p',
        pg.port,
        '-u',
        decodeURIComponent(pg.username),
        '--db',
        db,
        ...args,
      ],
      {
        env: schemaEnv,
        maxBuffer: 16 << 20,
      },
    );
  for (const [db, schema] of [
    ['temporal', 'postgresql/v12/temporal'],
    ['temporal_visibility', 'postgresql/v12/visibility'],
  ] as const) {
    o.progress(`[temporal] database ${db}: creating and migrating (schema tool)…`);
    await tool(db, 'create-database').catch(() => {}); // exists already: fine
    await tool(db, 'setup-schema', '-v', '0.0').catch(() => {});
    await tool(db, 'update-schema', '--schema-name', schema);
  }
  const ports = {
    frontend: await freePort(),
    http: await freePort(),
    history: await freePort(),
    matching: await freePort(),
    worker: await freePort(),
  };
  const members = {
    frontend: await freePort(),
    history: await freePort(),
    matching: await freePort(),
    worker: await freePort(),
  };
  const store = (db: string) => `
      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: "${pg.hostname}:${pg.port}"
        connectProtocol: tcp
        user: ${JSON.stringify(decodeURIComponent(pg.username))}
        password: ${JSON.stringify(password)}
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h`;
  const rpc = (grpc: number, member: number, http?: number) =>
    `{ grpcPort: ${grpc}, membershipPort: ${member}, bindOnLocalHost: true${http ? `, httpPort: ${http}` : ''} }`;
  const config = `# Written by Lia (temporal-dev/server-postgres.ts) for a test.
log: { stdout: true, level: warn }
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:${store('temporal')}
    visibility:${store('temporal_visibility')}
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }
services:
  frontend: { rpc: ${rpc(ports.frontend, members.frontend, ports.http)} }
  history: { rpc: ${rpc(ports.history, members.history)} }
  matching: { rpc: ${rpc(ports.matching, members.matching)} }
  worker: { rpc: ${rpc(ports.worker, members.worker)} }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${ports.frontend}"
      httpAddress: "127.0.0.1:${ports.http}"
dcRedirectionPolicy: { policy: noop }
`;
  fs.mkdirSync(path.join(o.dir, 'config'), { recursive: true });
  fs.writeFileSync(path.join(o.dir, 'config', 'development.yaml'), config, { mode: 0o600 });
  const address = `127.0.0.1:${ports.frontend}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    const log = fs.openSync(path.join(o.dir, 'server.log'), 'a');
    child = spawn(
      bins.server,
      ['--root', o.dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'],
      {
        stdio: ['ignore', log, log],
      },
    );
    fs.closeSync(log);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) {
        const tail = fs.readFileSync(path.join(o.dir, 'server.log'), 'utf8').split('\n').slice(-15);
        throw new Error(
          `the Temporal server exited (${child.exitCode}); the end of ${path.join(o.dir, 'server.log')}:\n${tail.join('\n')}`,
        );
      }
      try {
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch {
        if (Date.now() > deadline)
          throw new Error(`the Temporal server did not answer on ${address} within 120 s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  await start();
  // The namespace and Lia's search attributes, as an operator registers them once.
  const cli = await ensureTemporalCli(process.env.LIA__TEMPORAL__CLI, o.progress);
  await run(cli, ['operator', 'namespace', 'create', '--address', address, '-n', o.namespace]).catch(
    (err: Error) => {
      if (!/already/i.test(String((err as { stderr?: string }).stderr ?? err.message))) throw err;
    },
  );
  for (let i = 0; ; i++) {
    try {
      await run(cli, [
        'operator',
        'search-attribute',
        'create',
        '--address',
        address,
        '-n',
        o.namespace,
        ...o.searchAttributes.flatMap((n) => ['--name', n, '--type', 'Keyword']),
      ]);
      break;
    } catch (err) {
      if (/already/i.test(String((err as { stderr?: string }).stderr ?? ''))) break;
      // A namespace just registered takes a moment to be known everywhere.
      if (i > 30) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const kill = async () => {
    const c = child;
    if (!c?.pid || !isAlive(c.pid)) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  return {
    address,
    kill,
    restart: start,
    async stop() {
      const c = child;
      if (!c?.pid || !isAlive(c.pid)) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    },
  };
}
