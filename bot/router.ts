/**
 * Where every interaction goes in: like the discord.js guide's `interactionCreate` handler, it
 * owns what all of them share — servers only, the deferral (Discord allows 3 s for a first
 * answer), the one error reply (errors.ts), the answer of a handler that outlives the
 * interaction's 15-minute token, autocomplete — so commands and buttons only do their job.
 */
import {
  type APIEmbed,
  type Interaction,
  type InteractionEditReplyOptions,
  MessageFlags,
  type RepliableInteraction,
} from 'discord.js';
import { metrics } from '../common/metrics.js';
import { openPullRequest, resumeTask, stopTask } from './actions.js';
import { commands } from './commands/index.js';
import type { Reply } from './commands/types.js';
import type { BotContext } from './context.js';
import { answerDeadline, clip, DISCORD, describeDiscordError } from './discord-rules.js';
import { userMessage } from './errors.js';
import { answerQuestion, parseQuestionButton } from './questions.js';
import { parseButton } from './view.js';

export const SERVERS_ONLY =
  "Lia's commands work in a server only: use them in a channel of a server Lia is in.";

export async function route(i: Interaction, ctx: BotContext): Promise<void> {
  if (i.isAutocomplete()) {
    // Outside a server there is nothing to suggest (the command itself will be refused).
    if (!i.inGuild()) return void (await i.respond([]));
    await commands.get(i.commandName)?.autocomplete?.(i, ctx);
    return;
  }
  if (!i.isRepliable()) return;
  // The commands are registered for servers only; an old registration or a client may still
  // send one from a DM, where no thread, role or spawn list applies.
  if (!i.inGuild()) {
    await i.reply({ content: SERVERS_ONLY, flags: MessageFlags.Ephemeral });
    return;
  }
  if (i.isChatInputCommand()) {
    const command = commands.get(i.commandName);
    if (!command) {
      await i.reply({ content: `Unknown command /${i.commandName}.`, flags: MessageFlags.Ephemeral });
      return;
    }
    await answer(i, ctx, `/${i.commandName}`, () => command.execute(i, ctx));
    return;
  }
  if (i.isButton()) {
    const q = parseQuestionButton(i.customId);
    if (q) {
      await answer(i, ctx, 'answer', () => answerQuestion(i, ctx, q));
      return;
    }
    const b = parseButton(i.customId);
    if (!b) return;
    await answer(i, ctx, b.action, () =>
      b.action === 'resume'
        ? resumeTask(i, ctx, b.taskId)
        : b.action === 'pr'
          ? openPullRequest(i, ctx, b.taskId)
          : stopTask(i, ctx, b.taskId),
    );
  }
}

/**
 * Defers an ephemeral reply, runs the handler, and shows its reply or its error. A handler
 * still running when the interaction's token is about to die (a restore that takes longer
 * than 15 minutes) gets its answer posted in the channel instead, as a message that mentions
 * the user: the reply says so while it still can.
 */
async function answer(
  i: RepliableInteraction,
  ctx: BotContext,
  what: string,
  handler: () => Promise<Reply | undefined>,
): Promise<void> {
  await i.deferReply({ flags: MessageFlags.Ephemeral });
  const count = (outcome: string) =>
    metrics.botInteractions.inc({ kind: i.isButton() ? 'button' : 'command', name: what, outcome });
  const work = handler().then(
    (r) => {
      count('ok');
      return r;
    },
    (err): Reply => {
      count('refused');
      return userMessage(err, ctx.logger, what);
    },
  );
  const late = Symbol('late');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof late>((resolve) => {
    timer = setTimeout(
      () => resolve(late),
      Math.max(0, answerDeadline(i.createdTimestamp, ctx.timing) - Date.now()),
    );
  });
  const first = await Promise.race([work, deadline]);
  clearTimeout(timer);
  if (first !== late) {
    if (first !== undefined) await show(i, ctx, what, first);
    return;
  }
  await i
    .editReply({
      content: `${what} is taking longer than Discord keeps this answer open. I will post the outcome in this channel and mention you.`,
      embeds: [],
      components: [],
    })
    .catch((err) =>
      ctx.logger.warn({ err: describeDiscordError(err) }, `${what}: could not say the answer comes later`),
    );
  const reply = await work;
  if (reply !== undefined) await postLate(i, ctx, what, reply);
}

/**
 * Edits the reply; if Discord refuses the full answer (a limit, an outage that outlasted the
 * retries), shows its text alone, so the user is never left with "thinking…".
 */
async function show(i: RepliableInteraction, ctx: BotContext, what: string, reply: Reply): Promise<void> {
  try {
    await i.editReply(reply);
    return;
  } catch (err) {
    ctx.logger.warn({ err: describeDiscordError(err) }, `${what}: Discord refused the answer`);
  }
  await i
    .editReply({ content: clip(plainText(reply), DISCORD.contentMax), embeds: [], components: [] })
    .catch((err) => ctx.logger.error({ err: describeDiscordError(err) }, `${what}: could not answer at all`));
}

/**
 * The answer of a handler that outlived its interaction, as a channel message. Buttons are
 * dropped: they carry the user's signed terminal link, which must not be posted for all to see.
 */
async function postLate(i: RepliableInteraction, ctx: BotContext, what: string, reply: Reply): Promise<void> {
  const channel = i.channel;
  const text = clip(`<@${i.user.id}> ${what}: ${plainText(reply)}`, DISCORD.contentMax);
  try {
    if (!channel?.isSendable()) throw new Error('the channel is not one the bot can post in');
    await channel.send({ content: text, allowedMentions: { users: [i.user.id] } });
  } catch (err) {
    ctx.logger.error(
      { err: describeDiscordError(err), user: i.user.id },
      `${what}: the late answer could not be posted`,
    );
  }
}

/** A reply as text: its content, then its embeds' titles, descriptions and fields. */
export function plainText(reply: Reply): string {
  if (typeof reply === 'string') return reply;
  const r = reply as InteractionEditReplyOptions;
  const parts = r.content ? [r.content] : [];
  for (const e of r.embeds ?? []) {
    const j = (e as { toJSON?: () => APIEmbed }).toJSON?.() ?? (e as APIEmbed);
    parts.push(
      [j.title, j.description, ...(j.fields ?? []).map((f) => `${f.name}: ${f.value}`)]
        .filter(Boolean)
        .join('\n'),
    );
  }
  return parts.join('\n') || 'done.';
}
