/** Task-id suggestions: the user's own tasks, live ones first, matching what was typed. */
import type { AutocompleteInteraction } from 'discord.js';
import { isEnded } from '../common/task.js';
import { interactionActor } from './actor.js';
import type { BotContext } from './context.js';
import { clip, DISCORD } from './discord-rules.js';

export async function suggestTasks(i: AutocompleteInteraction, ctx: BotContext): Promise<void> {
  const typed = i.options.getFocused().toLowerCase();
  const actor = interactionActor(ctx.config, i);
  const tasks = await ctx.tasks.list({ ...actor, admin: false });
  const choices = tasks
    .filter((t) => t.id.includes(typed) || t.promptFirstLine.toLowerCase().includes(typed))
    .sort((a, b) => Number(isEnded(a.status)) - Number(isEnded(b.status)))
    .slice(0, DISCORD.choicesMax)
    .map((t) => ({
      name: clip(`${t.id} · ${t.status} · ${t.promptFirstLine}`, DISCORD.nameMax),
      value: t.id,
    }));
  await i.respond(choices);
}
