/** What the host activities run with: built once per host worker (workers/host.ts). */
import type { Client } from '@temporalio/client';
import type { Config } from '../common/config.js';
import type { Pool } from '../common/db/pool.js';
import type { Logger } from '../common/logger.js';
import type { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { VmDriver } from '../vm/driver.js';
import type { EgressProxy } from '../vm/egress/proxy.js';

export interface HostActivityDeps {
  driver: VmDriver;
  pool: Pool;
  output: OutputLog;
  config: Config;
  logger: Logger;
  client: Client;
  /** Listens on the input and task channels: wakes a task's pump when input is queued for it, or its row changes. */
  inputBus: TaskBus;
  /** The host's egress proxy: a model request in flight is agent activity. */
  egress?: Pick<EgressProxy, 'busy' | 'on' | 'off'> &
    Partial<Pick<EgressProxy, 'setTaskRepo' | 'clearTaskRepo'>>;
}
