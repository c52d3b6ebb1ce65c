import { repoChoices } from '../../tasks/repo.js';
import { spawnTask, suggestPermissionModes } from '../spawn-task.js';
import { guildCommand } from './builder.js';
import {
  autoPullRequestOption,
  branchOption,
  permissionModeOption,
  promptOption,
  repoOption,
  runtimeOption,
} from './task-option.js';
import type { Command } from './types.js';

export const spawn: Command = {
  data: guildCommand('spawn', 'Start an agent in its own VM')
    .addStringOption(promptOption)
    .addStringOption(runtimeOption)
    .addStringOption(permissionModeOption)
    .addStringOption(repoOption)
    .addStringOption(branchOption)
    .addBooleanOption(autoPullRequestOption),
  execute: (i, ctx) => spawnTask(i, ctx, async () => []),
  // permission_mode suggests the modes; repo the repositories the operator allowed
  // (LIA__FORGE__ALLOW_REPOS) that match what was typed.
  autocomplete: async (i, ctx) => {
    if (i.options.getFocused(true).name !== 'repo') return suggestPermissionModes(i, ctx);
    const typed = i.options.getFocused();
    await i.respond(repoChoices(ctx.config, typed).map((r) => ({ name: r, value: r })));
  },
};
