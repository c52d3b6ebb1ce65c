import { SlashCommandBuilder } from 'discord.js';
import { LIMITS, RUNTIMES } from '../../common/task.js';
import { spawnTask } from '../spawn-task.js';
import type { Command } from './types.js';

export const spawn: Command = {
  data: new SlashCommandBuilder()
    .setName('spawn')
    .setDescription('Start an agent in its own VM')
    .addStringOption((o) =>
      o
        .setName('prompt')
        .setDescription('What the agent should do')
        .setRequired(true)
        .setMaxLength(Math.min(6000, LIMITS.promptMaxChars)),
    )
    .addStringOption((o) =>
      o
        .setName('runtime')
        .setDescription('claude (default) or a plain shell')
        .addChoices(...RUNTIMES.map((r) => ({ name: r, value: r }))),
    ),
  execute: (i, ctx) => spawnTask(i, ctx, async () => []),
};
