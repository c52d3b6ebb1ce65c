import { EmbedBuilder } from 'discord.js';
import { interactionActor } from '../actor.js';
import { guildCommand } from './builder.js';
import type { Command } from './types.js';

const SHOWN = 20;

export const list: Command = {
  data: guildCommand('list', 'Your tasks'),
  async execute(i, ctx) {
    const tasks = await ctx.tasks.list({ ...interactionActor(ctx.config, i), admin: false });
    if (!tasks.length) return 'You have no tasks. Start one with `/spawn`.';
    const lines = tasks
      .slice(0, SHOWN)
      .map((t) => `\`${t.id}\` **${t.status}** · ${t.promptFirstLine.slice(0, 80).replace(/[`*_~|]/g, '')}`);
    if (tasks.length > SHOWN) lines.push(`… and ${tasks.length - SHOWN} older`);
    return { embeds: [new EmbedBuilder().setTitle('Your tasks').setDescription(lines.join('\n'))] };
  },
};
