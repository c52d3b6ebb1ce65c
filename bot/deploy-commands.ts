/**
 * Registers Lia's slash commands with Discord: globally, or in one guild with
 * LIA__DISCORD__GUILD_ID (instant, for development). Run once after a command changes:
 *   node --import tsx bot/deploy-commands.ts
 */
import { REST, Routes } from 'discord.js';
import { loadConfigOrExit } from '../common/config.js';
import { commands } from './commands/index.js';

export async function deployCommands(o: {
  token: string;
  applicationId: string;
  guildId?: string;
  apiUrl?: string;
}): Promise<number> {
  const rest = new REST(o.apiUrl ? { api: o.apiUrl } : {}).setToken(o.token);
  const body = [...commands.values()].map((c) => c.data.toJSON());
  const route = o.guildId
    ? Routes.applicationGuildCommands(o.applicationId, o.guildId)
    : Routes.applicationCommands(o.applicationId);
  const result = (await rest.put(route, { body })) as unknown[];
  return result.length;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = loadConfigOrExit();
  const { token, application_id: applicationId, guild_id: guildId, api_url: apiUrl } = config.discord;
  if (!token || !applicationId) {
    console.error(
      'set LIA__DISCORD__TOKEN and LIA__DISCORD__APPLICATION_ID (the bot application in the Discord developer portal)',
    );
    process.exit(2);
  }
  const n = await deployCommands({ token, applicationId, guildId, apiUrl });
  console.log(
    `deployed ${n} commands ${guildId ? `to guild ${guildId}` : 'globally (may take up to an hour to show)'}`,
  );
}
