/** What /spawn and /spawn-file share: permission, the task, the answer, the thread. */
import type { ChatInputCommandInteraction } from 'discord.js';
import { RUNTIMES, type Runtime } from '../common/task.js';
import { interactionActor, memberRoles, spawnRefusal } from './actor.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { Refusal } from './errors.js';
import { taskButtons, taskEmbed } from './view.js';

export function runtimeOption(i: ChatInputCommandInteraction): Runtime {
  const r = i.options.getString('runtime');
  return r && (RUNTIMES as readonly string[]).includes(r) ? (r as Runtime) : 'claude';
}

/** Creates the task (`files` may download an attachment), answers, then opens the task's thread. */
export async function spawnTask(
  i: ChatInputCommandInteraction,
  ctx: BotContext,
  files: () => Promise<{ name: string; data: Buffer }[]>,
): Promise<Reply | undefined> {
  const refusal = spawnRefusal(ctx.config, i.guildId, memberRoles(i.member));
  if (refusal) throw new Refusal(refusal);
  const prompt = i.options.getString('prompt', true);
  const runtime = runtimeOption(i);
  const actor = interactionActor(ctx.config, i);
  const { taskId, url } = await ctx.tasks.create(actor, { prompt, runtime, files: await files() });
  const firstLine = prompt.split('\n')[0]!.slice(0, 200);
  await i.editReply({
    content: `Task **${taskId}** is starting. Its thread follows what it does.`,
    embeds: [taskEmbed({ id: taskId, status: 'pending', promptFirstLine: firstLine, runtime })],
    components: [taskButtons(taskId, url)],
  });
  await ctx.threads.open(i, taskId, firstLine).catch((err) => {
    ctx.logger.warn({ taskId, err: (err as Error).message }, 'could not open the task thread');
  });
  return undefined;
}
