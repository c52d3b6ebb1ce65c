/**
 * `./lia start`: everything on one machine — Temporal, PostgreSQL (private ones when none is
 * configured), the control worker, a host worker, the API and web UI, and the bot when a
 * Discord token is set. Ctrl-C stops all of it. Task VMs outlive it on purpose, like they
 * outlive a worker restart: the next start picks them up again.
 */
import { loadConfigOrExit, publicUrl } from '../common/config.js';
import { createPool } from '../common/db/pool.js';
import { createLogger } from '../common/logger.js';
import { OutputLog } from '../output/log.js';
import { HostService } from '../tasks/hosts.js';
import { LinkSigner } from '../tasks/links.js';
import { TaskService } from '../tasks/service.js';
import { ThreadRecords } from '../tasks/threads.js';
import { egressFromConfig } from '../vm/egress/proxy.js';
import { NoDriverError, selectDriver } from '../vm/select.js';
import { createControlWorker } from '../workers/control.js';
import { createHostWorker } from '../workers/host.js';
import { connectTemporalShared } from '../workers/shared-connection.js';
import { bringUpStack } from './stack.js';

const config = loadConfigOrExit();
const logger = createLogger('lia', config.log.level);
const stack = await bringUpStack(config);
const pool = createPool(stack.databaseUrl);
config.api.service_token = stack.serviceToken;

// The API and the control worker share a connection, so task workflows start eagerly.
const { client: temporal, connection: temporalConnection } = await connectTemporalShared(
  stack.temporalAddress,
  config.temporal.namespace,
);
const control = await createControlWorker({
  connection: temporalConnection,
  temporalAddress: stack.temporalAddress,
  config,
  logger,
  pool,
  workflowBundlePath: stack.workflowBundlePath,
});
const egress = egressFromConfig(config);
// No driver that passes its self-check: Lia does not start (the reason is for each driver).
const driver = await selectDriver(config, logger, egress).catch(async (err: Error) => {
  if (!(err instanceof NoDriverError)) throw err;
  process.stderr.write(`\n${err.message}\n`);
  await stack.stop();
  process.exit(3);
});
const host = await createHostWorker({
  egress,
  config,
  pool,
  databaseUrl: stack.databaseUrl,
  temporalAddress: stack.temporalAddress,
  driver,
  logger,
});
const links = new LinkSigner(stack.linkSecret, config.api.link_ttl_minutes);
const tasks = new TaskService(temporal, pool, config, links, { eagerStart: true });
await (await import('../web/build.js')).ensureWebBuilt((m) => logger.info(m));
const { startApi } = await import('../api/server.js');
const output = new OutputLog(pool);
const api = await startApi({
  config,
  tasks,
  hosts: new HostService(pool),
  output,
  links,
  logger,
  databaseUrl: stack.databaseUrl,
});

let bot: { stop(): Promise<void> } | undefined;
if (config.discord.token) {
  const { startBot } = await import('../bot/client.js');
  bot = await startBot({
    config,
    tasks,
    output,
    threadRecords: new ThreadRecords(pool),
    logger,
    databaseUrl: stack.databaseUrl,
  });
}

const running = [control.run(), host.run()];
const lines = [
  '',
  'Lia is up.',
  `  API and web UI:  ${publicUrl(config)}   (REST under /api/v1)`,
  `  Temporal:        ${stack.temporalAddress}${stack.temporalUiUrl ? `   UI: ${stack.temporalUiUrl}` : ''}`,
  `  PostgreSQL:      ${stack.databaseUrl.replace(/\/\/[^@/]*@/, '//')}`,
  `  VM driver:       ${driver.name} (${driver.acceleration}), host ${config.host.id}`,
  `  Service token:   ${stack.serviceTokenFile ? `in ${stack.serviceTokenFile}` : 'LIA__API__SERVICE_TOKEN'}`,
  `  Discord bot:     ${bot ? 'connected' : 'off (set LIA__DISCORD__TOKEN)'}`,
  'Press Ctrl-C to stop.',
  // The first thing to do with it, with or without Discord (README's quick start; docs/cli.md).
  'Try it, in another terminal:  ./lia spawn --runtime shell "hello"   then   ./lia attach <id>',
  '',
];
process.stderr.write(lines.join('\n'));

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping…\n`);
  await bot?.stop().catch(() => {});
  await api.close().catch(() => {});
  // The Temporal SDK stops its workers on SIGINT/SIGTERM by itself: only stop one still running.
  if (control.getState() === 'RUNNING') control.shutdown();
  await host.shutdown().catch((err) => process.stderr.write(`host worker: ${(err as Error).message}\n`));
  await Promise.allSettled(running);
  await temporal.connection.close().catch(() => {});
  await pool.end().catch(() => {});
  await stack.stop();
  process.stderr.write('stopped.\n');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
