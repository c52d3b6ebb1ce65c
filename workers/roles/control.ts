/** The control role: task workflows, placement and records, the maintenance schedules. Stateless: run as many as you like. */

import { ensureWorkflowBundle } from '../bundle.js';
import { createControlWorker } from '../control.js';
import { registerControlGauges } from '../control-metrics.js';
import type { Role } from './role.js';

export const control: Role = async ({ config, logger, pool, temporalAddress }) => {
  const worker = await createControlWorker({
    temporalAddress,
    config,
    logger,
    pool,
    workflowBundlePath: await ensureWorkflowBundle(config.state.dir, (m) => logger.info(m)),
  });
  registerControlGauges(pool);
  const done = worker.run();
  return {
    info: { queue: 'lia-control' },
    done,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done.catch(() => {});
    },
  };
};
