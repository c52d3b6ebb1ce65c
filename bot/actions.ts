/** Resume and stop, shared by the slash commands and the buttons (the router has deferred the reply). */
import type { ButtonInteraction, ChatInputCommandInteraction } from 'discord.js';
import { interactionActor } from './actor.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { taskButtons, taskEmbed } from './view.js';

type Deferred = ChatInputCommandInteraction | ButtonInteraction;

export async function resumeTask(i: Deferred, ctx: BotContext, taskId: string): Promise<Reply> {
  const actor = interactionActor(ctx.config, i);
  await i.editReply({ content: `Resuming **${taskId}**…` });
  await ctx.tasks.resume(actor, taskId, 'completed');
  const t = await ctx.tasks.get(actor, taskId);
  return {
    content: `**${taskId}** is ${t.status}.`,
    embeds: [taskEmbed(t)],
    components: [taskButtons(taskId, await ctx.tasks.link(actor.userId, taskId))],
  };
}

export async function stopTask(i: Deferred, ctx: BotContext, taskId: string): Promise<Reply> {
  await ctx.tasks.stop(interactionActor(ctx.config, i), taskId, `stopped from Discord by ${i.user.id}`);
  return `Stopping **${taskId}**: its VM is being removed.`;
}

/** Pushes the task's branch and opens (or updates) its pull request; the link goes to the thread too. */
export async function openPullRequest(i: Deferred, ctx: BotContext, taskId: string): Promise<Reply> {
  const actor = interactionActor(ctx.config, i);
  await i.editReply({ content: `Pushing **${taskId}**'s branch and opening its pull request…` });
  const pr = await ctx.tasks.openPullRequest(actor, taskId);
  const line = `${pr.created ? 'Pull request opened' : 'Pull request updated'}: [#${pr.number}](${pr.url}) from \`${pr.branch}\`.`;
  await ctx.threads.tell(taskId, `**${taskId}**: ${line}`, i.user.id).catch(() => false);
  return line;
}
