import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import type { TaskService } from '../tasks/service.js';
import type { DiscordTiming } from './discord-rules.js';
import type { ThreadRelay } from './threads.js';

/** What every command and button handler gets: the same task service the API uses. */
export interface BotContext {
  config: Config;
  tasks: TaskService;
  logger: Logger;
  threads: ThreadRelay;
  /** Discord's interaction deadlines (the real ones, or a test's shorter ones). */
  timing: DiscordTiming;
}
