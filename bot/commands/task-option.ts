import type { SlashCommandBooleanOption, SlashCommandStringOption } from 'discord.js';
import { LIMITS, RUNTIMES } from '../../common/task.js';

/** The optional `permission_mode` option of /spawn and /spawn-file (suggested as one types). */
export const permissionModeOption = (o: SlashCommandStringOption) =>
  o
    .setName('permission_mode')
    .setDescription('ask (approve commands and edits here), edits (edits go ahead) or auto (no questions)')
    .setAutocomplete(true)
    .setMaxLength(10);

/** The `task_id` option of /status, /resume and /stop, with autocomplete. */
export const taskIdOption = (o: SlashCommandStringOption) =>
  o
    .setName('task_id')
    .setDescription('The task (t_…)')
    .setRequired(true)
    .setAutocomplete(true)
    .setMaxLength(40);

/** The `prompt` option of /spawn and /spawn-file. */
export const promptOption = (o: SlashCommandStringOption) =>
  o
    .setName('prompt')
    .setDescription('What the agent should do')
    .setRequired(true)
    .setMaxLength(Math.min(6000, LIMITS.promptMaxChars));

/** The optional `runtime` option of /spawn and /spawn-file. */
export const runtimeOption = (o: SlashCommandStringOption) =>
  o
    .setName('runtime')
    .setDescription(
      'claude (default, in the terminal), claude-headless (a conversation in the thread) or shell',
    )
    .addChoices(...RUNTIMES.map((r) => ({ name: r, value: r })));

/** The optional `repo` option of /spawn (issue 20): autocomplete from the operator's allowlist. */
export const repoOption = (o: SlashCommandStringOption) =>
  o
    .setName('repo')
    .setDescription('A repository to check out on the branch lia/<task> (owner/name or URL)')
    .setAutocomplete(true)
    .setMaxLength(300);

/** The optional `branch` option of /spawn: the base branch (default: the repository's default). */
export const branchOption = (o: SlashCommandStringOption) =>
  o.setName('branch').setDescription('The base branch to start from (with repo)').setMaxLength(200);

export const autoPullRequestOption = (o: SlashCommandBooleanOption) =>
  o
    .setName('auto_pr')
    .setDescription(
      'Open or update the pull request after every turn that changed the repository (with repo)',
    );
