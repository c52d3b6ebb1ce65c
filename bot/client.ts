/**
 * The Discord bot: discord.js on the gateway, slash commands, buttons and thread messages, all
 * acting through the same task client as the API (Temporal and PostgreSQL, not our own HTTP).
 */
import { Client, Events, GatewayIntentBits, type Interaction, MessageFlags } from 'discord.js';
import type { Config } from '../common/config.js';
import type { Pool } from '../common/db/pool.js';
import { TaskBus } from '../common/db/task-bus.js';
import type { Logger } from '../common/logger.js';
import type { TaskClient } from '../common/task-client.js';
import { resumeTask, stopTask } from './actions.js';
import { commands } from './commands/index.js';
import type { BotContext } from './context.js';
import { userMessage } from './errors.js';
import { ThreadRelay } from './threads.js';
import { parseButton } from './view.js';

export interface BotDeps {
  config: Config;
  tasks: TaskClient;
  pool: Pool;
  logger: Logger;
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
  const threads = new ThreadRelay(client, d.pool, bus, d.tasks, d.config, logger);
  const ctx: BotContext = { config: d.config, tasks: d.tasks, pool: d.pool, logger, threads };

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

async function route(i: Interaction, ctx: BotContext): Promise<void> {
  if (i.isAutocomplete()) {
    await commands.get(i.commandName)?.autocomplete?.(i, ctx);
    return;
  }
  if (i.isChatInputCommand()) {
    const command = commands.get(i.commandName);
    if (!command) {
      await i.reply({ content: `Unknown command /${i.commandName}.`, flags: MessageFlags.Ephemeral });
      return;
    }
    await command.execute(i, ctx);
    return;
  }
  if (i.isButton()) {
    const b = parseButton(i.customId);
    if (!b) return;
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    try {
      if (b.action === 'resume') await resumeTask(i, ctx, b.taskId);
      else await stopTask(i, ctx, b.taskId);
    } catch (err) {
      await i.editReply({ content: userMessage(err, ctx.logger, b.action) });
    }
  }
}
