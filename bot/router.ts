/**
 * Where every interaction goes in: like the discord.js guide's `interactionCreate` handler, it
 * owns what all of them share — the deferral (Discord allows 3 s for a first answer), the one
 * error reply (errors.ts), autocomplete — so commands and buttons only do their job.
 */
import { type Interaction, MessageFlags, type RepliableInteraction } from 'discord.js';
import { resumeTask, stopTask } from './actions.js';
import { commands } from './commands/index.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { userMessage } from './errors.js';
import { parseButton } from './view.js';

export async function route(i: Interaction, ctx: BotContext): Promise<void> {
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
    await answer(i, ctx, `/${i.commandName}`, () => command.execute(i, ctx));
    return;
  }
  if (i.isButton()) {
    const b = parseButton(i.customId);
    if (!b) return;
    await answer(i, ctx, b.action, () =>
      b.action === 'resume' ? resumeTask(i, ctx, b.taskId) : stopTask(i, ctx, b.taskId),
    );
  }
}

/** Defers an ephemeral reply, runs the handler, and shows its reply or its error. */
async function answer(
  i: RepliableInteraction,
  ctx: BotContext,
  what: string,
  handler: () => Promise<Reply | undefined>,
): Promise<void> {
  await i.deferReply({ flags: MessageFlags.Ephemeral });
  let reply: Reply | undefined;
  try {
    reply = await handler();
  } catch (err) {
    reply = userMessage(err, ctx.logger, what);
  }
  if (reply !== undefined) await i.editReply(reply);
}
