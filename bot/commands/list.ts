import { EmbedBuilder, MessageFlags, SlashCommandBuilder } from 'discord.js';
import { interactionActor } from '../actor.js';
import { userMessage } from '../errors.js';
import type { Command } from './types.js';

const SHOWN = 20;

export const list: Command = {
  data: new SlashCommandBuilder().setName('list').setDescription('Your tasks'),
  async execute(i, ctx) {
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    try {
      const tasks = await ctx.tasks.list({ ...interactionActor(ctx.config, i), admin: false });
      if (!tasks.length) {
        await i.editReply({ content: 'You have no tasks. Start one with `/spawn`.' });
        return;
      }
      const lines = tasks
        .slice(0, SHOWN)
        .map(
          (t) => `\`${t.id}\` **${t.status}** · ${t.promptFirstLine.slice(0, 80).replace(/[`*_~|]/g, '')}`,
        );
      if (tasks.length > SHOWN) lines.push(`… and ${tasks.length - SHOWN} older`);
      await i.editReply({
        embeds: [new EmbedBuilder().setTitle('Your tasks').setDescription(lines.join('\n'))],
      });
    } catch (err) {
      await i.editReply({ content: userMessage(err, ctx.logger, '/list') });
    }
  },
};
