/** What every role gets from the entry point (workers/main.ts), and what it gives back. */
import type { Config } from '../../common/config.js';
import type { Pool } from '../../common/db/pool.js';
import type { Logger } from '../../common/logger.js';

export interface RoleContext {
  config: Config;
  logger: Logger;
  pool: Pool;
  databaseUrl: string;
  temporalAddress: string;
}

export interface RunningRole {
  /** Shown by the supervisor (`./lia start`'s banner): addresses, the driver, warnings. */
  info: Record<string, unknown>;
  /** Settles when the role stops by itself (a worker that failed). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export type Role = (ctx: RoleContext) => Promise<RunningRole>;
