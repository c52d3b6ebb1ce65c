/**
 * A thread per task: its state changes and a short tail of its output are posted there (at most
 * one output post per LIA__DISCORD__TAIL_SECONDS), and the owner's messages there become the
 * agent's input. Thread ids live in PostgreSQL, so all of this survives a bot restart.
 */
import { ChannelType, type ChatInputCommandInteraction, type Client, type Message } from 'discord.js';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { isEnded } from '../common/task.js';
import type { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { TaskService } from '../tasks/service.js';
import type { ThreadRecords } from '../tasks/threads.js';
import { messageActor } from './actor.js';
import { userMessage } from './errors.js';
import { summaryPost, threadPost } from './tail.js';

const TAIL_BYTES = 8 * 1024;

interface Watch {
  unwatch: () => void;
  timer?: NodeJS.Timeout;
  lastPostAt: number;
  busy: Promise<void>;
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

  async open(i: ChatInputCommandInteraction, taskId: string, title: string): Promise<void> {
    const channel = i.channel ?? (i.channelId ? await this.client.channels.fetch(i.channelId) : null);
    if (!channel || channel.type !== ChannelType.GuildText)
      throw new Error('the command was not used in a server text channel');
    const thread = await channel.threads.create({
      name: `${taskId} · ${title}`.slice(0, 100),
      autoArchiveDuration: 1440,
      reason: `Lia task ${taskId}`,
    });
    await this.records.save({ taskId, threadId: thread.id, channelId: channel.id });
    await thread.send({
      content: `Task **${taskId}** by <@${i.user.id}>. What you write here goes to the agent.`,
      allowedMentions: { parse: [] },
    });
    this.watch(taskId);
  }

  private watch(taskId: string): void {
    if (this.watches.has(taskId)) return;
    const w: Watch = {
      lastPostAt: 0,
      busy: Promise.resolve(),
      unwatch: this.bus.watch(taskId, {
        output: () => this.schedule(taskId, false),
        task: () => this.schedule(taskId, true),
      }),
    };
    this.watches.set(taskId, w);
    this.schedule(taskId, true);
  }

  /** State changes post at once; output waits for the rate limit. */
  private schedule(taskId: string, stateChanged: boolean): void {
    const w = this.watches.get(taskId);
    if (!w) return;
    const wait = stateChanged
      ? 0
      : Math.max(0, w.lastPostAt + this.config.discord.tail_seconds * 1000 - Date.now());
    if (w.timer && !stateChanged) return;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      w.busy = w.busy
        .then(() => this.flush(taskId))
        .catch((err) => {
          this.logger.warn({ taskId, err: (err as Error).message }, 'could not post to the task thread');
        });
    }, wait);
  }

  private async flush(taskId: string): Promise<void> {
    const w = this.watches.get(taskId);
    const [task, thread] = await Promise.all([this.tasks.peek(taskId), this.records.ofTask(taskId)]);
    if (!w || !task || !thread) return;
    if (task.summary && !thread.summaryPosted) {
      const channel = await this.client.channels.fetch(thread.threadId);
      if (channel?.isSendable())
        await channel.send({
          content: summaryPost(task.summary, task.usage),
          allowedMentions: { parse: [] },
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
    const content = threadPost(header || `output of ${taskId}`, newOutput ? tail.data.toString('utf8') : '');
    const channel = await this.client.channels.fetch(thread.threadId);
    if (!channel?.isSendable()) throw new Error(`thread ${thread.threadId} is gone`);
    await channel.send({ content, allowedMentions: { parse: [] } });
    w.lastPostAt = Date.now();
    await this.records.markPosted(taskId, { status: task.status, seq: tail.seq });
    if (isEnded(task.status)) {
      w.unwatch();
      this.watches.delete(taskId);
    }
  }

  /** A message in a task's thread: from its owner (or an admin), it is typed into the agent. */
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
      await this.tasks.input(actor, t.taskId, Buffer.from(`${m.content}\r`, 'utf8'), task.status);
    } catch (err) {
      await m.reply({
        content: userMessage(err, this.logger, 'thread input'),
        allowedMentions: { parse: [] },
      });
    }
  }
}
