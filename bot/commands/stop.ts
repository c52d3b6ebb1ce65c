import { stopTask } from '../actions.js';
import { suggestTasks } from '../autocomplete.js';
import { guildCommand } from './builder.js';
import { taskIdOption } from './task-option.js';
import type { Command } from './types.js';

export const stop: Command = {
  data: guildCommand('stop', 'Stop a task and remove its VM').addStringOption(taskIdOption),
  execute: (i, ctx) => stopTask(i, ctx, i.options.getString('task_id', true).trim()),
  autocomplete: suggestTasks,
};
