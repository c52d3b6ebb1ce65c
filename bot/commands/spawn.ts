import { spawnTask, suggestPermissionModes } from '../spawn-task.js';
import { guildCommand } from './builder.js';
import { permissionModeOption, promptOption, runtimeOption } from './task-option.js';
import type { Command } from './types.js';

export const spawn: Command = {
  data: guildCommand('spawn', 'Start an agent in its own VM')
    .addStringOption(promptOption)
    .addStringOption(runtimeOption)
    .addStringOption(permissionModeOption),
  execute: (i, ctx) => spawnTask(i, ctx, async () => []),
  autocomplete: suggestPermissionModes,
};
