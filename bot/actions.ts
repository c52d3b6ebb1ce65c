/** Resume and stop, shared by the slash commands and the buttons (after the reply is deferred). */
import type { ButtonInteraction, ChatInputCommandInteraction } from 'discord.js';
import { interactionActor } from './actor.js';
import type { BotContext } from './context.js';
import { userMessage } from './errors.js';
import { taskButtons, taskEmbed } from './view.js';

type Deferred = ChatInputCommandInteraction | ButtonInteraction;

export async function resumeTask(i: Deferred, ctx: BotContext, taskId: string): Promise<void> {
  try {
    const actor = interactionActor(ctx.config, i);
    await i.editReply({ content: `Resuming **${taskId}**…` });
    await ctx.tasks.resume(actor, taskId, 'completed');
    const t = await ctx.tasks.get(actor, taskId);
    await i.editReply({
      content: `**${taskId}** is ${t.status}.`,
      embeds: [taskEmbed(t)],
      components: [taskButtons(taskId, await ctx.tasks.link(actor.userId, taskId))],
    });
  } catch (err) {
    await i.editReply({ content: userMessage(err, ctx.logger, 'resume') });
  }
}

export async function stopTask(i: Deferred, ctx: BotContext, taskId: string): Promise<void> {
  try {
    await ctx.tasks.stop(interactionActor(ctx.config, i), taskId, `stopped from Discord by ${i.user.id}`);
    await i.editReply({ content: `Stopping **${taskId}**: its VM is being removed.` });
  } catch (err) {
    await i.editReply({ content: userMessage(err, ctx.logger, 'stop') });
  }
}
