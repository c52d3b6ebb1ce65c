import { MessageFlags, SlashCommandBuilder } from 'discord.js';
import { isEnded } from '../../common/task.js';
import { interactionActor } from '../actor.js';
import { suggestTasks } from '../autocomplete.js';
import { userMessage } from '../errors.js';
import { taskButtons, taskEmbed } from '../view.js';
import { taskIdOption } from './task-option.js';
import type { Command } from './types.js';

export const status: Command = {
  data: new SlashCommandBuilder()
    .setName('status')
    .setDescription("A task's state")
    .addStringOption(taskIdOption),
  async execute(i, ctx) {
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    try {
      const actor = interactionActor(ctx.config, i);
      const t = await ctx.tasks.get(actor, i.options.getString('task_id', true).trim());
      const url = isEnded(t.status) ? undefined : await ctx.tasks.link(actor.userId, t.id);
      await i.editReply({
        embeds: [taskEmbed(t)],
        components: isEnded(t.status) ? [] : [taskButtons(t.id, url)],
      });
    } catch (err) {
      await i.editReply({ content: userMessage(err, ctx.logger, '/status') });
    }
  },
  autocomplete: suggestTasks,
};
