/** The host role: one per KVM host (LIA__HOST__ID), running its VMs' activities on lia-host-<id>. */
import { egressFromConfig } from '../../vm/egress/proxy.js';
import { selectDriver } from '../../vm/select.js';
import { createHostWorker } from '../host.js';
import type { Role } from './role.js';

export const host: Role = async ({ config, logger, pool, databaseUrl, temporalAddress }) => {
  const egress = egressFromConfig(config);
  const driver = await selectDriver(config, logger, egress);
  const worker = await createHostWorker({
    config,
    pool,
    databaseUrl,
    temporalAddress,
    driver,
    logger,
    egress,
  });
  const done = worker.run();
  return {
    info: { hostId: config.host.id, driver: driver.name, acceleration: driver.acceleration },
    done,
    stop: () => worker.shutdown(),
  };
};
