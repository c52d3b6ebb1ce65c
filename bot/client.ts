/**
 * The Discord bot: discord.js on the gateway, slash commands, buttons and thread messages, all
 * acting through the same task client as the API (Temporal and PostgreSQL, not our own HTTP).
 */
import { Client, Events, GatewayIntentBits } from 'discord.js';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { TaskService } from '../tasks/service.js';
import type { ThreadRecords } from '../tasks/threads.js';
import type { BotContext } from './context.js';
import { type DiscordTiming, discordTiming } from './discord-rules.js';
import { checkLinks } from './link-check.js';
import { route } from './router.js';
import { ThreadRelay } from './threads.js';

export interface BotDeps {
  config: Config;
  tasks: TaskService;
  output: OutputLog;
  threadRecords: ThreadRecords;
  logger: Logger;
  /** For the bot's own LISTEN connection (task changes and output wake its threads). */
  databaseUrl: string;
  /** Discord's interaction deadlines; tests shorten them along with the Discord stand-in's. */
  timing?: DiscordTiming;
}

export interface Bot {
  client: Client;
  /** What an operator should know: links users cannot open, spawning still closed. */
  warnings: string[];
  stop(): Promise<void>;
}

/**
 * What is wrong with the setup before the bot connects: terminal links Discord would refuse
 * (the bot does not start), and links users cannot open or spawning still closed (warnings).
 */
export async function startupChecks(config: Config, tasks: TaskService): Promise<string[]> {
  // A real link, as long as they get: the longest Discord user id, a task id, a signed token.
  const sample = await tasks.link('9'.repeat(20), 't_aaaaaaaaaa');
  const links = checkLinks(sample, Boolean(config.server.public_url));
  if (links.fatal) throw new Error(`the Discord bot will not start: ${links.fatal}`);
  const warnings = [...links.warnings];
  const { spawn_guilds, spawn_roles, spawn_open } = config.discord;
  if (!spawn_open && !spawn_guilds.length && !spawn_roles.length)
    warnings.push(
      'nobody can /spawn yet: set LIA__DISCORD__SPAWN_GUILDS or LIA__DISCORD__SPAWN_ROLES (or LIA__DISCORD__SPAWN_OPEN=true)',
    );
  return warnings;
}

export async function startBot(d: BotDeps): Promise<Bot> {
  const token = d.config.discord.token;
  if (!token) throw new Error('LIA__DISCORD__TOKEN is not set');
  const logger = d.logger.child({ part: 'bot' });
  const warnings = await startupChecks(d.config, d.tasks);
  for (const w of warnings) logger.warn(w);
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    ...(d.config.discord.api_url ? { rest: { api: d.config.discord.api_url } } : {}),
  });
  const bus = await TaskBus.start(d.databaseUrl, logger);
  const threads = new ThreadRelay(client, d.threadRecords, d.output, bus, d.tasks, d.config, logger);
  const ctx: BotContext = {
    config: d.config,
    tasks: d.tasks,
    logger,
    threads,
    timing: d.timing ?? discordTiming(),
  };

  client.on(Events.InteractionCreate, (i) => {
    void route(i, ctx).catch((err) => logger.error({ err }, 'interaction failed'));
  });
  client.on(Events.MessageCreate, (m) => {
    void threads.onMessage(m).catch((err) => logger.error({ err }, 'thread message failed'));
  });
  // A deleted or locked thread takes no more posts: stop before the first refused request.
  client.on(Events.ThreadDelete, (t) => {
    void threads.threadGone(t.id, 'deleted').catch((err) => logger.error({ err }, 'thread delete failed'));
  });
  client.on(Events.ThreadUpdate, (_old, t) => {
    if (t.locked)
      void threads.threadGone(t.id, 'locked').catch((err) => logger.error({ err }, 'thread lock failed'));
  });
  client.on(Events.Error, (err) => logger.error({ err }, 'discord client error'));

  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('Discord gateway: not ready within 30 s')), 30_000);
    client.once(Events.ClientReady, () => {
      clearTimeout(t);
      resolve();
    });
  });
  try {
    await client.login(token);
    await ready;
  } catch (err) {
    await client.destroy();
    await bus.close();
    throw new Error(`the Discord bot could not connect: ${(err as Error).message}`);
  }
  await threads.start();
  logger.info({ user: client.user?.tag }, 'Discord bot ready');
  return {
    client,
    warnings,
    async stop() {
      threads.stop();
      await client.destroy();
      await bus.close();
    },
  };
}
