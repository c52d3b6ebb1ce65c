import { resumeTask } from '../actions.js';
import { suggestTasks } from '../autocomplete.js';
import { guildCommand } from './builder.js';
import { taskIdOption } from './task-option.js';
import type { Command } from './types.js';

export const resume: Command = {
  data: guildCommand('resume', 'Resume a suspended task').addStringOption(taskIdOption),
  execute: (i, ctx) => resumeTask(i, ctx, i.options.getString('task_id', true).trim()),
  autocomplete: suggestTasks,
};
