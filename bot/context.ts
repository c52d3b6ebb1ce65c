import type { Config } from '../common/config.js';
import type { Pool } from '../common/db/pool.js';
import type { Logger } from '../common/logger.js';
import type { TaskClient } from '../common/task-client.js';
import type { ThreadRelay } from './threads.js';

/** What every command and button handler gets: the same task client the API uses. */
export interface BotContext {
  config: Config;
  tasks: TaskClient;
  pool: Pool;
  logger: Logger;
  threads: ThreadRelay;
}
