/**
 * Worker process entrypoint: `node --import tsx workers/main.ts host|control`.
 * For a deployment with several hosts: one `host` process per KVM host (LIA__HOST__ID),
 * any number of `control` processes. Both need LIA__DATABASE__URL and LIA__TEMPORAL__ADDRESS.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../common/config.js';
import { migrate } from '../common/db/migrate.js';
import { createPool } from '../common/db/pool.js';
import { createLogger } from '../common/logger.js';
import { exitWithParent } from '../system/parent-watch.js';
import { egressFromConfig } from '../vm/egress/proxy.js';
import { NoDriverError, selectDriver } from '../vm/select.js';
import { ensureWorkflowBundle } from './bundle.js';
import { createControlWorker } from './control.js';
import { createHostWorker } from './host.js';

const { positionals } = parseArgs({ allowPositionals: true });
const role = positionals[0];
if (role !== 'host' && role !== 'control') {
  process.stderr.write('usage: workers/main.ts host|control\n');
  process.exit(2);
}
const config = loadConfigOrExit();
const logger = createLogger(`lia-${role}`, config.log.level);
const databaseUrl = config.database.url;
const temporalAddress = config.temporal.address;
if (!databaseUrl || !temporalAddress) {
  logger.fatal(
    'a standalone worker needs LIA__DATABASE__URL and LIA__TEMPORAL__ADDRESS (./lia start sets up both itself)',
  );
  process.exit(2);
}
const pool = createPool(databaseUrl);
await migrate(databaseUrl);

// Until the worker is up (an image build can take minutes) stopping means exiting.
let stop: () => Promise<void> = async () => process.exit(1);
// Registered now, not once the worker runs: the Temporal SDK takes SIGTERM over when it loads,
// and a signal during start-up (the image build, the driver's self-check) would otherwise stop
// its runtime and leave this process up with nothing to do.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop());
exitWithParent(() => {
  logger.warn('the process that started this worker is gone; stopping');
  setTimeout(() => process.exit(1), 5000).unref();
  void stop().catch(() => process.exit(1));
});
let run: Promise<void>;
if (role === 'host') {
  const egress = egressFromConfig(config);
  // A host whose driver fails its self-check does not register: it says why and exits.
  const driver = await selectDriver(config, logger, egress).catch((err: Error) => {
    if (!(err instanceof NoDriverError)) throw err;
    logger.fatal({ reasons: err.reasons }, err.message);
    process.exit(3);
  });
  const host = await createHostWorker({ config, pool, databaseUrl, temporalAddress, driver, logger, egress });
  run = host.run();
  stop = host.shutdown;
  logger.info(
    { hostId: config.host.id, driver: driver.name, accel: driver.acceleration },
    'host worker running',
  );
} else {
  const worker = await createControlWorker({
    temporalAddress,
    config,
    logger,
    pool,
    workflowBundlePath: await ensureWorkflowBundle(config.state.dir),
  });
  run = worker.run();
  stop = async () => worker.shutdown();
  logger.info('control worker running');
}
await run;
await pool.end();
