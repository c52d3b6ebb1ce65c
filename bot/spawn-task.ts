/**
 * What /spawn and /spawn-file share: permission, where the task's thread goes, the task, the
 * thread, the answer. Everything that can refuse does so before the task is created; once it
 * exists, nothing may end in a bare error: the user is told that it exists and where.
 */
import {
  type AutocompleteInteraction,
  ChannelType,
  type ChatInputCommandInteraction,
  PermissionFlagsBits,
  type PermissionResolvable,
} from 'discord.js';
import { PERMISSION_MODE_HELP, PERMISSION_MODES, type PermissionMode } from '../common/conversation.js';
import { RUNTIMES, type Runtime } from '../common/task.js';
import { interactionActor, memberRoles, spawnRefusal } from './actor.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { describeDiscordError } from './discord-rules.js';
import { Refusal } from './errors.js';
import type { ThreadHome } from './threads.js';
import { taskButtons, taskEmbed } from './view.js';

export function runtimeOption(i: ChatInputCommandInteraction): Runtime {
  const r = i.options.getString('runtime');
  return r && (RUNTIMES as readonly string[]).includes(r) ? (r as Runtime) : 'claude';
}

/**
 * The `permission_mode` option: one of the modes, or nothing (the operator's default). Free text
 * (it is an autocomplete option, so a client may send anything): a value that is not a mode is
 * refused with the list.
 */
export function permissionModeOption(i: ChatInputCommandInteraction): PermissionMode | undefined {
  const m = i.options.getString('permission_mode')?.trim().toLowerCase();
  if (!m) return undefined;
  if ((PERMISSION_MODES as readonly string[]).includes(m)) return m as PermissionMode;
  throw new Refusal(
    `There is no permission mode "${m.slice(0, 20)}". Choose one of: ${PERMISSION_MODES.map((x) => `${x} (${PERMISSION_MODE_HELP[x]})`).join('; ')}.`,
  );
}

/** Suggestions for `permission_mode` as the user types: the modes that match, the default first. */
export async function suggestPermissionModes(i: AutocompleteInteraction, ctx: BotContext): Promise<void> {
  const focused = i.options.getFocused(true);
  if (focused.name !== 'permission_mode') return void (await i.respond([]));
  const typed = String(focused.value).toLowerCase();
  const def = ctx.config.agent.permission_mode;
  const modes = [def, ...PERMISSION_MODES.filter((m) => m !== def)];
  // By name first; words of the help only when no name starts so.
  const byName = modes.filter((m) => m.startsWith(typed));
  const shown = byName.length ? byName : modes.filter((m) => PERMISSION_MODE_HELP[m].includes(typed));
  await i.respond(
    shown.map((m) => ({
      name: `${m}${m === def ? ' (default)' : ''}: ${PERMISSION_MODE_HELP[m]}`.slice(0, 100),
      value: m,
    })),
  );
}

const PERMISSION_NAMES: [bigint, string][] = [
  [PermissionFlagsBits.ViewChannel, 'View Channel'],
  [PermissionFlagsBits.SendMessages, 'Send Messages'],
  [PermissionFlagsBits.CreatePublicThreads, 'Create Public Threads'],
  [PermissionFlagsBits.SendMessagesInThreads, 'Send Messages in Threads'],
];

/**
 * Where the task's thread goes: the channel the command was used in, or — used inside a thread
 * or a forum post — that thread's channel (a thread cannot hold a thread; in a forum, the task
 * gets a post of its own). Refused, before anything starts, where no thread can be opened or
 * the bot lacks the permissions to open one.
 */
export async function threadHome(i: ChatInputCommandInteraction): Promise<ThreadHome> {
  const here =
    i.channel ?? (i.channelId ? await i.client.channels.fetch(i.channelId).catch(() => null) : null);
  if (!here) throw new Refusal('Lia cannot see this channel, so it cannot open the task a thread here.');
  const base = here.isThread()
    ? (here.parent ?? (here.parentId ? await i.client.channels.fetch(here.parentId).catch(() => null) : null))
    : here;
  const forum = base?.type === ChannelType.GuildForum || base?.type === ChannelType.GuildMedia;
  if (!base || !(forum || base.type === ChannelType.GuildText || base.type === ChannelType.GuildAnnouncement))
    throw new Refusal(
      'Each task gets a thread, and none can be opened here: use /spawn in a text channel, one of its threads, or a forum post.',
    );
  const need: bigint[] = forum
    ? [
        PermissionFlagsBits.ViewChannel,
        PermissionFlagsBits.SendMessages,
        PermissionFlagsBits.SendMessagesInThreads,
      ]
    : [
        PermissionFlagsBits.ViewChannel,
        PermissionFlagsBits.CreatePublicThreads,
        PermissionFlagsBits.SendMessagesInThreads,
      ];
  const missing = need.filter((p) => !i.appPermissions?.has(p as PermissionResolvable));
  if (missing.length)
    throw new Refusal(
      `Lia needs the ${missing.map((p) => PERMISSION_NAMES.find(([f]) => f === p)?.[1]).join(', ')} permission in <#${base.id}> to give the task its thread; a server admin can grant it.`,
    );
  return base as ThreadHome;
}

/** Creates the task (`files` may download an attachment), opens its thread, then answers. */
export async function spawnTask(
  i: ChatInputCommandInteraction,
  ctx: BotContext,
  files: () => Promise<{ name: string; data: Buffer }[]>,
): Promise<Reply | undefined> {
  const refusal = spawnRefusal(ctx.config, i.guildId, memberRoles(i.member));
  if (refusal) throw new Refusal(refusal);
  const home = await threadHome(i);
  const prompt = i.options.getString('prompt', true);
  const runtime = runtimeOption(i);
  const permissionMode = permissionModeOption(i);
  const actor = interactionActor(ctx.config, i);
  const repo = i.options.getString('repo') ?? undefined;
  const branch = i.options.getString('branch') ?? undefined;
  const autoPullRequest = i.options.getBoolean('auto_pr') ?? undefined;
  const { taskId, url } = await ctx.tasks.create(actor, {
    prompt,
    runtime,
    files: await files(),
    ...(permissionMode ? { permissionMode } : {}),
    ...(repo || branch ? { repo, branch } : {}),
    ...(autoPullRequest !== undefined ? { autoPullRequest } : {}),
  });

  // The task exists and its VM is starting: from here on, every failure is reported with that.
  const firstLine = prompt.split('\n')[0]!.slice(0, 200);
  let threadId: string | undefined;
  let where: string;
  try {
    threadId = await ctx.threads.open(home, taskId, firstLine, i.user.id, { pullRequest: !!repo });
    where = `Its thread: <#${threadId}>.`;
  } catch (err) {
    ctx.logger.warn({ taskId, err: describeDiscordError(err) }, 'could not open the task thread');
    where = `Its thread could not be opened (${describeDiscordError(err)}); \`/status ${taskId}\` shows how it is doing.`;
  }
  try {
    await i.editReply({
      content: `Task **${taskId}** is starting. ${where}`,
      embeds: [
        taskEmbed({
          id: taskId,
          status: 'pending',
          promptFirstLine: firstLine,
          runtime,
          permissionMode: runtime === 'shell' ? null : (permissionMode ?? ctx.config.agent.permission_mode),
        }),
      ],
      components: [taskButtons(taskId, url)],
    });
    return undefined;
  } catch (err) {
    ctx.logger.warn({ taskId, err: describeDiscordError(err) }, '/spawn: Discord refused the answer');
  }
  // Text alone, in case it was the embed or the buttons Discord refused, or its outage has passed.
  const plain = `Task **${taskId}** was created and is starting, but Discord refused the full answer. ${where} \`/status ${taskId}\` gives its terminal link.`;
  try {
    await i.editReply({ content: plain, embeds: [], components: [] });
    return undefined;
  } catch (err) {
    ctx.logger.warn({ taskId, err: describeDiscordError(err) }, '/spawn: the interaction is out of reach');
  }
  // The interaction is out of reach: say it in the task's thread, where the user will look.
  const note = `<@${i.user.id}> your task **${taskId}** is starting, but Discord did not let me answer your /spawn. \`/status ${taskId}\` gives its terminal link.`;
  const told = threadId
    ? await ctx.threads.tell(taskId, note, i.user.id)
    : await (async () => {
        if (!i.channel?.isSendable()) return false;
        await i.channel.send({ content: note, allowedMentions: { users: [i.user.id] } });
        return true;
      })().catch(() => false);
  if (!told)
    ctx.logger.error({ taskId, user: i.user.id }, '/spawn: the user could not be told about the task');
  return undefined;
}
