import { ApplicationIntegrationType, InteractionContextType, SlashCommandBuilder } from 'discord.js';

/**
 * A slash command offered in servers only: not in DMs with the bot, not as a user-installed
 * app. Tasks get their thread in a server channel, and the spawn allowlists are per server and
 * role, none of which a DM has. (The router still refuses one from a DM: old registrations and
 * other clients may send it anyway.)
 */
export const guildCommand = (name: string, description: string) =>
  new SlashCommandBuilder()
    .setName(name)
    .setDescription(description)
    .setContexts(InteractionContextType.Guild)
    .setIntegrationTypes(ApplicationIntegrationType.GuildInstall);
