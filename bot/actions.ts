/** Resume and stop, shared by the slash commands and the buttons (the router has deferred the reply). */
import type { ButtonInteraction, ChatInputCommandInteraction } from 'discord.js';
import { interactionActor } from './actor.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { pullRequestLine, taskButtons, taskEmbed } from './view.js';

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

/**
 * Pushes the task's branch and opens (or updates) its pull request. The thread hears of it from
 * the task's row (as of a pull request opened after a turn), with what it holds.
 */
export async function openPullRequest(i: Deferred, ctx: BotContext, taskId: string): Promise<Reply> {
  const actor = interactionActor(ctx.config, i);
  await i.editReply({ content: `Pushing **${taskId}**'s branch and opening its pull request…` });
  const pr = await ctx.tasks.openPullRequest(actor, taskId);
  return pullRequestLine({
    kind: pr.created ? 'opened' : 'updated',
    trigger: 'asked',
    number: pr.number,
    url: pr.url,
    branch: pr.branch,
    ...(pr.stat ? { stat: pr.stat } : {}),
  });
}
