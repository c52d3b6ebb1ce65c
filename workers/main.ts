/**
 * A Lia process of one role: `node --import tsx workers/main.ts api|bot|control|host`
 * (`./lia run <role>`). Each runs alone with its own configuration, so a crash in one takes no
 * other down; `./lia start` supervises one of each on one machine. A deployment runs one `host`
 * per KVM host (LIA__HOST__ID), and as many `control`, `api` and `bot` as it likes. Every role
 * needs LIA__DATABASE__URL and LIA__TEMPORAL__ADDRESS, and serves its metrics on
 * LIA__METRICS__PORT (/metrics).
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Runtime } from '@temporalio/worker';
import { loadConfigOrExit } from '../common/config.js';
import { migrate } from '../common/db/migrate.js';
import { createPool } from '../common/db/pool.js';
import { createLogger } from '../common/logger.js';
import { exitWithParent } from '../system/parent-watch.js';
import { NoDriverError } from '../vm/select.js';
import { EXIT_UNFIT } from './exit-codes.js';
import { type MetricsServer, serveMetrics } from './metrics-server.js';
import { api } from './roles/api.js';
import { bot } from './roles/bot.js';
import { control } from './roles/control.js';
import { host } from './roles/host.js';
import type { Role, RunningRole } from './roles/role.js';

const ROLES: Record<string, Role> = { api, bot, control, host };
const { positionals } = parseArgs({ allowPositionals: true });
const name = positionals[0] ?? '';
const role = ROLES[name];
if (!role) {
  process.stderr.write(`usage: workers/main.ts ${Object.keys(ROLES).join('|')}  (./lia run <role>)\n`);
  process.exit(2);
}
const config = loadConfigOrExit();
const logger = createLogger(`lia-${name}`, config.log.level);
const databaseUrl = config.database.url;
const temporalAddress = config.temporal.address;
if (!databaseUrl || !temporalAddress) {
  logger.fatal(
    `the ${name} role on its own needs LIA__DATABASE__URL and LIA__TEMPORAL__ADDRESS (./lia start sets up both itself)`,
  );
  process.exit(2);
}

// The Temporal SDK's worker metrics, on a loopback port of their own, appended to /metrics.
let sdkMetricsUrl: string | undefined;
if (config.metrics.port && (name === 'control' || name === 'host')) {
  const port = await freePort();
  Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${port}` } } } });
  sdkMetricsUrl = `http://127.0.0.1:${port}/metrics`;
}

const pool = createPool(databaseUrl);
await migrate(databaseUrl);

// Until the role is up (an image build can take minutes) stopping means exiting.
let stop: () => Promise<void> = async () => process.exit(1);
exitWithParent(() => {
  logger.warn('the process that started this one is gone; stopping');
  setTimeout(() => process.exit(1), 5000).unref();
  void stop().catch(() => process.exit(1));
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop());

let metricsServer: MetricsServer | undefined;
let running: RunningRole;
try {
  running = await role({ config, logger, pool, databaseUrl, temporalAddress });
  if (config.metrics.port)
    metricsServer = await serveMetrics({
      host: config.metrics.host,
      port: config.metrics.port,
      role: name,
      logger,
      sdkMetricsUrl,
    });
} catch (err) {
  // A host no driver can run on (every self-check failed): starting it again cannot help.
  if (err instanceof NoDriverError) {
    logger.fatal({ reasons: err.reasons }, err.message);
    process.exit(EXIT_UNFIT);
  }
  logger.fatal({ err: (err as Error).message }, `the ${name} role could not start`);
  process.exit(1);
}
let stopping = false;
stop = async () => {
  if (stopping) return;
  stopping = true;
  await running.stop().catch((err) => logger.warn({ err: (err as Error).message }, 'stopping'));
  await metricsServer?.close();
  await pool.end().catch(() => {});
  process.exit(0);
};
logger.info({ role: name, ...running.info }, `${name} running`);
// The supervisor (./lia start) waits for this before it shows its banner.
process.send?.({ type: 'ready', role: name, info: { ...running.info, metricsPort: metricsServer?.port } });
await running.done.catch((err) => {
  logger.fatal({ err: (err as Error).message }, `the ${name} role failed`);
  process.exit(1);
});
if (!stopping) {
  logger.error(`the ${name} role stopped by itself`);
  process.exit(1);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
