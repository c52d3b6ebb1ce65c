/**
 * A thread per task: its state changes and a short tail of its output are posted there (at most
 * one output post per LIA__DISCORD__TAIL_SECONDS), and the owner's messages there become the
 * agent's input. Thread ids live in PostgreSQL, so all of this survives a bot restart.
 *
 * Discord can take a thread away: deleted, locked by a moderator, or the bot's permission
 * removed. The first such refusal (or the gateway event saying so) drops the thread for good:
 * asking again on every output event would only pile up refused requests, which Discord counts
 * toward a ban. A failure that is Discord's own (5xx, a timeout) is retried with a growing
 * pause, so the last output still gets posted when no further output comes to trigger it;
 * rate limits (429) are waited out by discord.js itself, from Discord's headers.
 */

import {
  type AnyThreadChannel,
  ChannelType,
  type Client,
  type ForumChannel,
  type MediaChannel,
  type Message,
  type NewsChannel,
  type SendableChannels,
  type TextChannel,
} from 'discord.js';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { isBarePullRequestAsk } from '../common/pull-request.js';
import { isEnded } from '../common/task.js';
import type { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { TaskService } from '../tasks/service.js';
import type { ThreadRecords } from '../tasks/threads.js';
import { messageActor } from './actor.js';
import { channelGone, clip, DISCORD, describeDiscordError } from './discord-rules.js';
import { userMessage } from './errors.js';
import { questionButtons, questionText } from './question-view.js';
import { summaryPost, threadPost } from './tail.js';
import { pullRequestButtons, pullRequestLine, queueLine } from './view.js';

const TAIL_BYTES = 8 * 1024;
/** Pauses after failed posts: 1 s, doubling, at most a minute. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

/** A channel a task's thread can be opened in: a text or announcement channel, or a forum. */
export type ThreadHome = TextChannel | NewsChannel | ForumChannel | MediaChannel;

interface Watch {
  unwatch: () => void;
  timer?: NodeJS.Timeout;
  lastPostAt: number;
  /** One attempt at a time; what comes in meanwhile runs once after it (`again`). */
  inFlight: boolean;
  again?: 'output' | 'state';
  /** Failed attempts in a row, and no new attempt before `retryAt`. */
  failures: number;
  retryAt: number;
}

export class ThreadRelay {
  private readonly watches = new Map<string, Watch>();

  constructor(
    private readonly client: Client,
    private readonly records: ThreadRecords,
    private readonly output: OutputLog,
    private readonly bus: TaskBus,
    private readonly tasks: TaskService,
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  /** Picks up the threads of tasks that are still going (after a restart too). */
  async start(): Promise<void> {
    for (const t of await this.records.live()) this.watch(t.taskId);
  }

  stop(): void {
    for (const w of this.watches.values()) {
      w.unwatch();
      clearTimeout(w.timer);
    }
    this.watches.clear();
  }

  /**
   * Opens the task's thread in `home` — a thread in a text channel, or a new post in a forum —
   * and starts relaying. Returns the thread's id; throws what Discord refused.
   */
  async open(
    home: ThreadHome,
    taskId: string,
    title: string,
    ownerId: string,
    opts: { pullRequest?: boolean } = {},
  ): Promise<string> {
    const name = clip(`${taskId} · ${title}`, DISCORD.nameMax);
    const intro = {
      content: `Task **${taskId}** by <@${ownerId}>. What you write here goes to the agent.`,
      allowedMentions: { parse: [] },
      // A task with a repository: its owner opens the pull request from here (issue 20).
      ...(opts.pullRequest ? { components: [pullRequestButtons(taskId)] } : {}),
    };
    let thread: AnyThreadChannel;
    if (home.type === ChannelType.GuildForum || home.type === ChannelType.GuildMedia) {
      // A forum post is a thread that starts with a message: the intro is that message.
      thread = await home.threads.create({
        name,
        autoArchiveDuration: 1440,
        message: intro,
        reason: `Lia task ${taskId}`,
      });
    } else {
      thread = await home.threads.create({ name, autoArchiveDuration: 1440, reason: `Lia task ${taskId}` });
    }
    await this.records.save({ taskId, threadId: thread.id, channelId: home.id });
    if (home.type !== ChannelType.GuildForum && home.type !== ChannelType.GuildMedia)
      await thread.send(intro).catch((err) => {
        this.logger.warn(
          { taskId, err: describeDiscordError(err) },
          'could not post the intro in the task thread',
        );
      });
    this.watch(taskId);
    return thread.id;
  }

  /** A message in the task's thread (a mention, when the reply to the user could not be shown). */
  async tell(taskId: string, content: string, mention: string): Promise<boolean> {
    const row = await this.records.ofTask(taskId);
    if (!row) return false;
    try {
      const channel = await this.client.channels.fetch(row.threadId);
      if (!channel?.isSendable()) return false;
      await channel.send({
        content: clip(content, DISCORD.contentMax),
        allowedMentions: { users: [mention] },
      });
      return true;
    } catch (err) {
      this.logger.warn({ taskId, err: describeDiscordError(err) }, 'could not post in the task thread');
      return false;
    }
  }

  /** Discord says a thread is deleted or locked (gateway events): stop posting there. */
  async threadGone(threadId: string, why: string): Promise<void> {
    const row = await this.records.byThread(threadId);
    if (row) await this.drop(row.taskId, why);
  }

  private async drop(taskId: string, why: string): Promise<void> {
    const w = this.watches.get(taskId);
    if (w) {
      w.unwatch();
      clearTimeout(w.timer);
      this.watches.delete(taskId);
    }
    await this.records.forget(taskId);
    this.logger.warn({ taskId, why }, 'the task thread is gone: no more posts there (the task goes on)');
  }

  private watch(taskId: string): void {
    if (this.watches.has(taskId)) return;
    const w: Watch = {
      lastPostAt: 0,
      inFlight: false,
      failures: 0,
      retryAt: 0,
      unwatch: this.bus.watch(taskId, {
        output: () => this.schedule(taskId, false),
        task: () => this.schedule(taskId, true),
      }),
    };
    this.watches.set(taskId, w);
    this.schedule(taskId, true);
  }

  /** State changes post at once; output waits for the tail interval; nothing before a retry is due. */
  private schedule(taskId: string, stateChanged: boolean): void {
    const w = this.watches.get(taskId);
    if (!w) return;
    const now = Date.now();
    const wait = Math.max(
      stateChanged ? 0 : w.lastPostAt + this.config.discord.tail_seconds * 1000 - now,
      w.retryAt - now,
      0,
    );
    if (w.timer && (!stateChanged || w.retryAt > now)) return;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      void this.attempt(taskId, stateChanged);
    }, wait);
  }

  private async attempt(taskId: string, stateChanged: boolean): Promise<void> {
    const w = this.watches.get(taskId);
    if (!w) return;
    // An attempt still running (discord.js waiting out a 429, say) is not joined by another:
    // what came meanwhile is looked at once, when it is done.
    if (w.inFlight) {
      w.again = stateChanged || w.again === 'state' ? 'state' : 'output';
      return;
    }
    if (Date.now() < w.retryAt) return this.schedule(taskId, stateChanged);
    w.inFlight = true;
    try {
      await this.flush(taskId);
      w.failures = 0;
      w.retryAt = 0;
    } catch (err) {
      if (channelGone(err)) return void (await this.drop(taskId, describeDiscordError(err)));
      // Anything else may pass (Discord's 5xx, a timeout, our database): try again after a pause,
      // whether or not more output comes.
      w.failures++;
      const pause = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (w.failures - 1));
      w.retryAt = Date.now() + pause;
      this.logger.warn(
        { taskId, err: describeDiscordError(err), retryInMs: pause },
        'could not post to the task thread; trying again',
      );
      w.again = 'state';
    } finally {
      w.inFlight = false;
    }
    if (w.again && this.watches.get(taskId) === w) {
      const state = w.again === 'state';
      w.again = undefined;
      this.schedule(taskId, state);
    }
  }

  private async flush(taskId: string): Promise<void> {
    const w = this.watches.get(taskId);
    const [task, thread] = await Promise.all([this.tasks.peek(taskId), this.records.ofTask(taskId)]);
    if (!w || !task || !thread) return;
    const channel = await this.client.channels.fetch(thread.threadId);
    if (!channel?.isSendable())
      return this.drop(taskId, `thread ${thread.threadId} is not a channel the bot can post in`);
    // The conversation first: questions (with their buttons) and decisions, then finished turns.
    const conv = await this.tasks.peekConversation(taskId, thread.turnsPosted);
    await this.postQuestions(taskId, channel, conv.questions, task.owner);
    for (const t of conv.doneTurns) {
      if (!t.result) continue;
      // The owner is told a turn is done (notify-when-done): the post is made once, so is the ping.
      await channel.send({
        content:
          ownerPing(task.owner) +
          summaryPost({ ...t.result, result: t.result.text }, task.usage, t.n > 1 ? t.n : undefined),
        allowedMentions: pingOnly(task.owner),
      });
      await this.records.markTurnsPosted(taskId, t.n);
    }
    // The pull request's news (opened, updated, failed): after the turn that led to it.
    const prEvents = task.pullRequestEvents ?? 0;
    if (task.pullRequestLast && prEvents > thread.prPosted) {
      await channel.send({ content: pullRequestLine(task.pullRequestLast), allowedMentions: { parse: [] } });
      await this.records.markPullRequestPosted(taskId, prEvents);
    }
    // A headless run of the first version (no turns): its one summary.
    if (task.summary && !thread.summaryPosted && task.summary.turn === undefined) {
      await channel.send({
        content: ownerPing(task.owner) + summaryPost(task.summary, task.usage),
        allowedMentions: pingOnly(task.owner),
      });
      await this.records.markPosted(taskId, { summary: true });
    }
    const tail = await this.output.tail(taskId, TAIL_BYTES);
    const newOutput = tail.seq > thread.postedSeq;
    const stateChanged = task.status !== thread.lastStatus;
    if (!stateChanged && !newOutput) return;
    if (!stateChanged && Date.now() - w.lastPostAt < this.config.discord.tail_seconds * 1000) {
      this.schedule(taskId, false);
      return;
    }
    let header = stateChanged ? `**${task.status}**` : '';
    if (stateChanged && task.error) header += ` — ${task.error}`;
    if (stateChanged && task.status === 'pending' && task.queue)
      header += ` — waiting for a host: ${queueLine(task.queue)}`;
    const content = threadPost(header || `output of ${taskId}`, newOutput ? tail.data.toString('utf8') : '');
    await channel.send({ content, allowedMentions: { parse: [] } });
    w.lastPostAt = Date.now();
    await this.records.markPosted(taskId, { status: task.status, seq: tail.seq });
    if (isEnded(task.status)) {
      w.unwatch();
      this.watches.delete(taskId);
    }
  }

  /**
   * Each question once, with its buttons; a settled one loses them and says who decided what and
   * when. Questions settled before they were posted (always allowed, too many) get their record.
   */
  private async postQuestions(
    taskId: string,
    channel: SendableChannels,
    questions: Awaited<ReturnType<TaskService['peekConversation']>>['questions'],
    owner: string,
  ): Promise<void> {
    if (!questions.length) return;
    const posts = new Map((await this.records.questionPosts(taskId)).map((p) => [p.questionId, p]));
    for (const q of questions) {
      const post = posts.get(q.id);
      if (post?.settled) continue;
      if (!post) {
        // A question that waits pings its owner, once (the post is made once); a settled one does not.
        const m = await channel.send({
          content: (q.decision ? '' : ownerPing(owner)) + questionText(q, q.decision),
          components: q.decision ? [] : [questionButtons(taskId, q.id)],
          allowedMentions: q.decision ? { parse: [] } : pingOnly(owner),
        });
        await this.records.saveQuestionPost(taskId, {
          questionId: q.id,
          messageId: m.id,
          settled: Boolean(q.decision),
        });
        continue;
      }
      if (!q.decision) continue;
      try {
        const m = await channel.messages.fetch(post.messageId);
        await m.edit({
          content: questionText(q, q.decision),
          components: [],
          allowedMentions: { parse: [] },
        });
      } catch (err) {
        if (channelGone(err)) throw err;
        // The message is gone (deleted by a moderator): the record goes in a message of its own.
        await channel.send({ content: questionText(q, q.decision), allowedMentions: { parse: [] } });
      }
      await this.records.saveQuestionPost(taskId, { ...post, settled: true });
    }
  }

  /**
   * A message in a task's thread from its owner (or an admin): in a headless conversation the
   * next turn of the agent's session (queued behind the one running); elsewhere typed into the
   * agent's terminal.
   */
  async onMessage(m: Message): Promise<void> {
    if (m.author.bot || !m.channel.isThread()) return;
    const t = await this.records.byThread(m.channelId);
    this.logger.debug({ threadId: m.channelId, taskId: t?.taskId }, 'thread message');
    if (!t) return;
    try {
      const actor = messageActor(this.config, m);
      const task = await this.tasks.authorized(actor, t.taskId);
      if (task.status === 'suspended')
        await m.reply({
          content: 'Resuming the task; your message reaches the agent once it runs again.',
          allowedMentions: { parse: [] },
        });
      // "Open a PR" alone: Lia opens it (the thread hears of it when it is done), the agent is not asked.
      if (task.repo && isBarePullRequestAsk(m.content))
        await m.reply({
          content: `Pushing \`${task.repo.branch}\` and opening the pull request…`,
          allowedMentions: { parse: [] },
        });
      const r = await this.tasks.followUp(actor, t.taskId, m.content);
      if (r.kind === 'turn' && (r.ahead > 0 || (r.pullRequestAfter && !task.autoPullRequest)))
        await m.reply({
          content: [
            r.ahead > 0
              ? `Queued as turn ${r.n}: the agent takes it after the ${r.ahead === 1 ? 'turn' : `${r.ahead} turns`} before it.`
              : '',
            r.pullRequestAfter && !task.autoPullRequest
              ? 'The pull request is opened when this turn ends.'
              : '',
          ]
            .filter(Boolean)
            .join(' '),
          allowedMentions: { parse: [] },
        });
    } catch (err) {
      await m.reply({
        content: userMessage(err, this.logger, 'thread input'),
        allowedMentions: { parse: [] },
      });
    }
  }
}

/** A mention of the task's owner when the owner is a Discord user (tasks spawned elsewhere have other ids). */
function ownerPing(owner: string): string {
  return /^\d{17,20}$/.test(owner) ? `<@${owner}> ` : '';
}

/** Mentions allowed in a post: the owner's alone, nobody else's, whatever the text holds. */
function pingOnly(owner: string): { parse: []; users: string[] } {
  return { parse: [], users: /^\d{17,20}$/.test(owner) ? [owner] : [] };
}
