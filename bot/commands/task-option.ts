import type { SlashCommandStringOption } from 'discord.js';

/** The `task_id` option of /status, /resume and /stop, with autocomplete. */
export const taskIdOption = (o: SlashCommandStringOption) =>
  o
    .setName('task_id')
    .setDescription('The task (t_…)')
    .setRequired(true)
    .setAutocomplete(true)
    .setMaxLength(40);
