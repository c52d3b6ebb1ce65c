import { SlashCommandBuilder } from 'discord.js';
import { spawnTask } from '../spawn-task.js';
import { promptOption, runtimeOption } from './task-option.js';
import type { Command } from './types.js';

export const spawn: Command = {
  data: new SlashCommandBuilder()
    .setName('spawn')
    .setDescription('Start an agent in its own VM')
    .addStringOption(promptOption)
    .addStringOption(runtimeOption),
  execute: (i, ctx) => spawnTask(i, ctx, async () => []),
};
