import { isEnded } from '../../common/task.js';
import { interactionActor } from '../actor.js';
import { suggestTasks } from '../autocomplete.js';
import { taskButtons, taskEmbed } from '../view.js';
import { guildCommand } from './builder.js';
import { taskIdOption } from './task-option.js';
import type { Command } from './types.js';

export const status: Command = {
  data: guildCommand('status', "A task's state").addStringOption(taskIdOption),
  async execute(i, ctx) {
    const actor = interactionActor(ctx.config, i);
    const t = await ctx.tasks.get(actor, i.options.getString('task_id', true).trim());
    if (isEnded(t.status)) return { embeds: [taskEmbed(t)], components: [] };
    return {
      embeds: [taskEmbed(t)],
      components: [taskButtons(t.id, await ctx.tasks.link(actor.userId, t.id))],
    };
  },
  autocomplete: suggestTasks,
};
