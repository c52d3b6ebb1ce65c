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
}

export interface Bot {
  client: Client;
  stop(): Promise<void>;
}

export async function startBot(d: BotDeps): Promise<Bot> {
  const token = d.config.discord.token;
  if (!token) throw new Error('LIA__DISCORD__TOKEN is not set');
  const logger = d.logger.child({ part: 'bot' });
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    ...(d.config.discord.api_url ? { rest: { api: d.config.discord.api_url } } : {}),
  });
  const bus = await TaskBus.start(d.databaseUrl, logger);
  const threads = new ThreadRelay(client, d.threadRecords, d.output, bus, d.tasks, d.config, logger);
  const ctx: BotContext = { config: d.config, tasks: d.tasks, logger, threads };

  client.on(Events.InteractionCreate, (i) => {
    void route(i, ctx).catch((err) => logger.error({ err }, 'interaction failed'));
  });
  client.on(Events.MessageCreate, (m) => {
    void threads.onMessage(m).catch((err) => logger.error({ err }, 'thread message failed'));
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
    async stop() {
      threads.stop();
      await client.destroy();
      await bus.close();
    },
  };
}
