import { LIMITS } from '../../common/task.js';
import { downloadAttachment } from '../attachments.js';
import { spawnTask, suggestPermissionModes } from '../spawn-task.js';
import { guildCommand } from './builder.js';
import { permissionModeOption, promptOption, runtimeOption } from './task-option.js';
import type { Command } from './types.js';

export const spawnFile: Command = {
  data: guildCommand('spawn-file', 'Start an agent with a file in its working directory')
    .addStringOption(promptOption)
    .addAttachmentOption((o) =>
      o
        .setName('file')
        .setDescription(`A file for the agent (at most ${LIMITS.fileMaxBytes / 1024 / 1024} MiB)`)
        .setRequired(true),
    )
    .addStringOption(runtimeOption)
    .addStringOption(permissionModeOption),
  autocomplete: suggestPermissionModes,
  execute: (i, ctx) =>
    spawnTask(i, ctx, async () => {
      const a = i.options.getAttachment('file', true);
      return [
        await downloadAttachment({ name: a.name, url: a.url, size: a.size, contentType: a.contentType }),
      ];
    }),
};
