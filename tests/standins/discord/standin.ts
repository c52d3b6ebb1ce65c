/**
 * A Discord stand-in on loopback for the real discord.js client: the gateway (./gateway.ts) and
 * the REST routes the bot uses — interaction callbacks, follow-ups, edits and deletes of the
 * original response, channels, threads and forum posts, messages, command deployment — and a CDN
 * for attachments.
 *
 * Strict by default, as Discord is: a first response after 3 s gets 10062, interaction tokens
 * die after 15 minutes (50027), each interaction type takes only its own callback types, every
 * route that carries content checks Discord's limits (./rules.ts), the bot has only the
 * permissions the setup guide asks for, a locked thread refuses posts, and thread posts have a
 * rate-limit bucket with Discord's headers. Everything refused is recorded in `refusals`; tests
 * assert it empty unless they expect a refusal (`takeRefusals`).
 *
 * Faults on demand (`inject`): 429s with real headers and bodies (per route or global), 50013,
 * 10003, 50035, 160005, 5xx. World events: threads archived, locked or deleted; interactions from
 * a thread, a forum post, a voice channel's chat, or a DM.
 */
import http from 'node:http';
import type net from 'node:net';
import {
  type APIEmbed,
  type APIMessage,
  type APIUser,
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ChannelType,
  ComponentType,
  GatewayDispatchEvents,
  InteractionResponseType,
  InteractionType,
  PermissionFlagsBits,
} from 'discord-api-types/v10';
import { Gateway } from './gateway.js';
import {
  ALLOWED_CALLBACKS,
  choiceProblems,
  type DiscordError,
  ERRORS,
  messageProblems,
  THREAD_ARCHIVE_DURATIONS,
} from './rules.js';

const DISCORD_EPOCH = 1420070400000n;
let counter = 0n;
export const snowflake = (): string =>
  String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (counter++ & 0xfffn));

/** What the setup guide (docs/bot.md) asks the invite to grant: no Manage Threads, no admin. */
export const BOT_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.CreatePublicThreads |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.ReadMessageHistory;

/** Discord's window for an interaction's first response, and an interaction token's life. */
export const ACK_DEADLINE_MS = 3000;
export const TOKEN_LIFETIME_MS = 15 * 60_000;
/** Thread and channel posts: a bucket per channel, as Discord's 5 messages per 5 s. */
const MESSAGE_BUCKET = { limit: 5, windowMs: 5000 };

export interface StandInUser {
  user: APIUser;
  roles: string[];
}

export interface Response {
  type: number;
  data?: {
    content?: string;
    embeds?: APIEmbed[];
    flags?: number;
    components?: unknown[];
    choices?: unknown[];
  };
}

/** One request Discord answered with an error, and why. */
export interface Refusal {
  method: string;
  route: string;
  status: number;
  code: number;
  why: string;
}

/** A fault a test asks for: Discord's error, or a 429, on the next matching requests. */
export type Fault =
  | { kind: 'error'; error: DiscordError }
  | { kind: 'rateLimit'; retryAfter: number; global?: boolean; scope?: 'user' | 'shared' }
  | { kind: 'server'; status: number };

export const FAULTS = {
  rateLimit: (retryAfter: number): Fault => ({ kind: 'rateLimit', retryAfter }),
  globalRateLimit: (retryAfter: number): Fault => ({ kind: 'rateLimit', retryAfter, global: true }),
  missingPermissions: (): Fault => ({ kind: 'error', error: ERRORS.missingPermissions() }),
  unknownChannel: (): Fault => ({ kind: 'error', error: ERRORS.unknownChannel() }),
  invalidForm: (): Fault => ({
    kind: 'error',
    error: ERRORS.invalidForm([{ path: 'content', code: 'BASE_TYPE_INVALID', message: 'Invalid.' }]),
  }),
  threadLocked: (): Fault => ({ kind: 'error', error: ERRORS.threadLocked() }),
  serverError: (status = 502): Fault => ({ kind: 'server', status }),
};

interface Injection {
  method?: string;
  route: RegExp;
  fault: Fault;
  times: number;
  until: number;
}

type Channel = Record<string, unknown> & {
  id: string;
  type: ChannelType;
  name?: string;
  guild_id?: string;
  parent_id?: string | null;
  thread_metadata?: {
    archived: boolean;
    locked: boolean;
    auto_archive_duration: number;
    archive_timestamp: string;
  };
};

/** One interaction as the stand-in saw it: what was sent, and everything the bot answered. */
export class InteractionRecord {
  readonly dispatchedAt = performance.now();
  firstResponseMs?: number;
  readonly responses: Response[] = [];
  /** The original response message, as created by type 4, a deferral, or edited later. */
  original?: APIMessage & { flags?: number };
  originalDeleted = false;
  readonly followUps: APIMessage[] = [];
  private waiters: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly token: string,
    readonly userId: string,
    readonly payload: Record<string, unknown>,
    readonly tokenLifetimeMs: number,
  ) {}

  changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  get expired(): boolean {
    return performance.now() - this.dispatchedAt > this.tokenLifetimeMs;
  }

  /** Resolves once `pred` holds for this record (checked on every change). */
  async until<T>(what: string, pred: (r: this) => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred(this);
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) {
        const data = this.payload.data as { name?: string; custom_id?: string };
        throw new Error(
          `interaction ${data?.name ?? data?.custom_id}: timed out waiting for ${what}; responses ${JSON.stringify(this.responses).slice(0, 800)}; visible ${JSON.stringify(this.visibleText()).slice(0, 800)}`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The text the user sees now: the original's content and embeds, then follow-ups. */
  visibleText(): string {
    const parts: string[] = [];
    const msgs = [this.originalDeleted ? undefined : this.original, ...this.followUps].filter(
      Boolean,
    ) as APIMessage[];
    for (const m of msgs) {
      if (m.content) parts.push(m.content);
      for (const e of m.embeds ?? [])
        parts.push(
          [e.title, e.description, ...(e.fields ?? []).map((f) => `${f.name}: ${f.value}`)].join('\n'),
        );
    }
    return parts.join('\n');
  }

  get ephemeral(): boolean {
    const first = this.responses[0];
    return Boolean(((first?.data?.flags ?? 0) & 64) !== 0);
  }
}

/** Where a user acts: a guild channel or thread by id, or the user's DM with the bot. */
export type Where = string | 'dm';

export class DiscordStandIn {
  readonly token = `standin-token-${snowflake()}`;
  readonly applicationId = snowflake();
  readonly guildId = snowflake();
  /** A text channel (where tasks' threads go), a forum, and a voice channel (with its text chat). */
  readonly channelId = snowflake();
  readonly forumId = snowflake();
  readonly voiceId = snowflake();
  readonly botUser: APIUser = {
    id: this.applicationId,
    username: 'lia',
    discriminator: '0',
    global_name: 'Lia',
    avatar: null,
    bot: true,
  };
  readonly interactions: InteractionRecord[] = [];
  readonly messages = new Map<string, APIMessage[]>();
  /** Every request Discord would refuse; tests assert it empty unless they expect one. */
  readonly refusals: Refusal[] = [];
  /** Faults that were injected and served. */
  readonly injected: { method: string; route: string; status: number }[] = [];
  /** 401, 403 and 429 (but shared-scope 429) answers: what Discord's Cloudflare ban counts (10,000 per 10 minutes). */
  invalidRequests = 0;
  /** 429s of an exhausted bucket (Discord's flow control, which discord.js waits out). */
  readonly bucketLimited: { method: string; route: string }[] = [];
  /** Every REST request: method, route, time (performance.now()). */
  readonly requests: { method: string; route: string; at: number }[] = [];
  readonly attachments = new Map<string, { data: Buffer; contentType: string; expired: boolean }>();
  deployedCommands?: { route: string; body: unknown };
  /** Shortens Discord's 15-minute interaction tokens for interactions dispatched from now on. */
  tokenLifetimeMs = TOKEN_LIFETIME_MS;
  private readonly channels = new Map<string, Channel>();
  private readonly deleted = new Set<string>();
  private readonly botPermissions = new Map<string, bigint>();
  private readonly byToken = new Map<string, InteractionRecord>();
  private readonly injections: Injection[] = [];
  private readonly buckets = new Map<string, { remaining: number; resetAt: number; blockedUntil: number }>();
  private globalBlockedUntil = 0;
  private readonly server: http.Server;
  private readonly gateway: Gateway;
  private members: StandInUser[] = [];
  private readonly roleIds = new Set<string>();
  private messageWaiters: (() => void)[] = [];
  url = '';

  constructor() {
    const guild = {
      guild_id: this.guildId,
      position: 0,
      permission_overwrites: [],
      nsfw: false,
      parent_id: null,
    };
    this.channels.set(this.channelId, {
      ...guild,
      id: this.channelId,
      type: ChannelType.GuildText,
      name: 'agents',
    });
    this.channels.set(this.forumId, {
      ...guild,
      id: this.forumId,
      type: ChannelType.GuildForum,
      name: 'agent-forum',
      available_tags: [],
      default_reaction_emoji: null,
      default_sort_order: null,
      default_forum_layout: 0,
      flags: 0,
    });
    this.channels.set(this.voiceId, {
      ...guild,
      id: this.voiceId,
      type: ChannelType.GuildVoice,
      name: 'voice',
      bitrate: 64000,
      user_limit: 0,
      rtc_region: null,
    });
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((e) => {
        res.writeHead(500).end(String(e));
      });
    });
    this.gateway = new Gateway(this.server, {
      token: this.token,
      applicationId: this.applicationId,
      botUser: this.botUser,
      guild: () => this.guildPayload(),
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }

  /** REST base for the bot (`LIA__DISCORD__API_URL`). */
  get apiUrl(): string {
    return `${this.url}/api`;
  }

  get gatewayConnections(): number {
    return this.gateway.connected;
  }

  async close(): Promise<void> {
    this.gateway.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** Threads that exist (not deleted), archived ones included. */
  get threads(): Channel[] {
    return [...this.channels.values()].filter((c) => isThread(c.type) && !this.deleted.has(c.id));
  }

  channel(id: string): Channel | undefined {
    return this.deleted.has(id) ? undefined : this.channels.get(id);
  }

  /** The refusals so far, cleared: a test that expects some takes and checks them. */
  takeRefusals(): Refusal[] {
    return this.refusals.splice(0);
  }

  addUser(name: string, roles: string[] = []): StandInUser {
    const u = {
      user: { id: snowflake(), username: name, discriminator: '0', global_name: name, avatar: null },
      roles,
    };
    this.members.push(u);
    for (const r of roles) this.roleIds.add(r);
    return u;
  }

  /**
   * An attachment on Discord's CDN. Discord computes its size itself; its signed URL expires
   * (`expired` serves the 404 an expired URL gets).
   */
  addAttachment(name: string, data: Buffer, contentType: string, o: { expired?: boolean } = {}) {
    const id = snowflake();
    this.attachments.set(`${id}/${name}`, { data, contentType, expired: o.expired ?? false });
    return {
      id,
      filename: name,
      size: data.length,
      url: `${this.url}/attachments/${id}/${encodeURIComponent(name)}`,
      proxy_url: `${this.url}/attachments/${id}/${encodeURIComponent(name)}`,
      content_type: contentType,
    };
  }

  /** Takes permissions away from the bot in one channel (and the threads under it). */
  denyBot(channelId: string, ...flags: bigint[]): void {
    let p = this.botPermissions.get(channelId) ?? BOT_PERMISSIONS;
    for (const f of flags) p &= ~f;
    this.botPermissions.set(channelId, p);
  }

  /** Gives the bot back the setup guide's permissions in that channel. */
  allowBot(channelId: string): void {
    this.botPermissions.delete(channelId);
  }

  private permissionsIn(channelId: string): bigint {
    const c = this.channels.get(channelId);
    const home = c && isThread(c.type) ? (c.parent_id ?? channelId) : channelId;
    return this.botPermissions.get(home) ?? BOT_PERMISSIONS;
  }

  /**
   * The next `times` requests (or all of them for `forMs`) whose method and route match get
   * `fault` instead of their answer. Routes look like `/channels/123/messages`.
   */
  inject(o: { method?: string; route: RegExp; fault: Fault; times?: number; forMs?: number }): void {
    this.injections.push({
      method: o.method,
      route: o.route,
      fault: o.fault,
      times: o.times ?? (o.forMs ? Number.POSITIVE_INFINITY : 1),
      until: o.forMs ? Date.now() + o.forMs : Number.POSITIVE_INFINITY,
    });
  }

  clearInjections(): void {
    this.injections.length = 0;
  }

  /** A thread a user opened: in a text channel, or a post in the forum. */
  addThread(parentId: string, name: string, by: StandInUser): Channel {
    const thread = this.newThread(parentId, name, by.user.id, 1440);
    if (this.channels.get(parentId)?.type === ChannelType.GuildForum)
      this.storeMessage(thread.id, this.message(thread.id, by.user, 'the post', {}, thread.id));
    return thread;
  }

  archiveThread(id: string): void {
    this.updateThread(id, { archived: true });
  }

  /** A moderator locks the thread (and archives it, as Discord's "lock" does). */
  lockThread(id: string): void {
    this.updateThread(id, { archived: true, locked: true });
  }

  deleteThread(id: string): void {
    const t = this.channels.get(id);
    if (!t || !isThread(t.type)) throw new Error(`no thread ${id}`);
    this.deleted.add(id);
    this.gateway.broadcast(GatewayDispatchEvents.ThreadDelete, {
      id,
      guild_id: this.guildId,
      parent_id: t.parent_id,
      type: t.type,
    });
  }

  private updateThread(id: string, m: { archived?: boolean; locked?: boolean }): void {
    const t = this.channel(id);
    if (!t?.thread_metadata) throw new Error(`no thread ${id}`);
    Object.assign(t.thread_metadata, m, { archive_timestamp: new Date().toISOString() });
    this.gateway.broadcast(GatewayDispatchEvents.ThreadUpdate, t);
  }

  private member(u: StandInUser) {
    return {
      user: u.user,
      roles: u.roles,
      joined_at: new Date(0).toISOString(),
      deaf: false,
      mute: false,
      flags: 0,
      permissions: String(
        PermissionFlagsBits.ViewChannel |
          PermissionFlagsBits.SendMessages |
          PermissionFlagsBits.UseApplicationCommands,
      ),
    };
  }

  private guildPayload() {
    const role = (id: string, name: string, position: number, permissions: string) => ({
      id,
      name,
      permissions,
      position,
      color: 0,
      hoist: false,
      managed: false,
      mentionable: false,
      flags: 0,
    });
    const all = [...this.channels.values()].filter((c) => !this.deleted.has(c.id));
    return {
      id: this.guildId,
      name: 'Lia test guild',
      icon: null,
      owner_id: this.members[0]?.user.id ?? this.applicationId,
      roles: [
        ...[...this.roleIds].map((id, n) => role(id, `role-${n + 1}`, n + 1, '0')),
        role(this.guildId, '@everyone', 0, String(BOT_PERMISSIONS)),
      ],
      emojis: [],
      stickers: [],
      features: [],
      member_count: this.members.length + 1,
      members: [
        {
          user: this.botUser,
          roles: [],
          joined_at: new Date(0).toISOString(),
          deaf: false,
          mute: false,
          flags: 0,
        },
      ],
      channels: all.filter((c) => !isThread(c.type)),
      threads: all.filter((c) => isThread(c.type) && !c.thread_metadata?.archived),
      voice_states: [],
      presences: [],
      large: false,
      unavailable: false,
      joined_at: new Date(0).toISOString(),
      preferred_locale: 'en-US',
      premium_tier: 0,
      verification_level: 0,
      mfa_level: 0,
      nsfw_level: 0,
      system_channel_flags: 0,
      afk_timeout: 300,
    };
  }

  private base(
    u: StandInUser,
    type: InteractionType,
    data: unknown,
    where: Where = this.channelId,
    extra: Record<string, unknown> = {},
  ) {
    const id = snowflake();
    const token = `itoken-${id}`;
    const dmId = snowflake();
    const place =
      where === 'dm'
        ? {
            // A DM with the bot: no guild, a user instead of a member (BOT_DM context).
            channel_id: dmId,
            channel: {
              id: dmId,
              type: ChannelType.DM,
              recipients: [u.user],
              last_message_id: null,
              flags: 0,
            },
            user: u.user,
            authorizing_integration_owners: { '0': '0' },
            context: 1,
          }
        : {
            guild_id: this.guildId,
            channel_id: where,
            channel: this.channelOrThrow(where),
            member: this.member(u),
            authorizing_integration_owners: { '0': this.guildId },
            context: 0,
            guild_locale: 'en-US',
          };
    const payload = {
      id,
      application_id: this.applicationId,
      type,
      token,
      version: 1,
      data,
      app_permissions: String(where === 'dm' ? BOT_PERMISSIONS : this.permissionsIn(where)),
      locale: 'en-US',
      entitlements: [],
      attachment_size_limit: 10 * 1024 * 1024,
      ...place,
      ...extra,
    };
    const rec = new InteractionRecord(id, token, u.user.id, payload, this.tokenLifetimeMs);
    this.interactions.push(rec);
    this.byToken.set(token, rec);
    if (!this.gateway.broadcast(GatewayDispatchEvents.InteractionCreate, payload))
      throw new Error('no bot is connected to the gateway');
    return rec;
  }

  private channelOrThrow(id: string): Channel {
    const c = this.channel(id);
    if (!c) throw new Error(`no channel ${id} in the stand-in`);
    return c;
  }

  /** A user runs a slash command, by default in the text channel. Options: strings, or `{ attachment }`. */
  slash(
    u: StandInUser,
    name: string,
    options: Record<string, string | { attachment: ReturnType<DiscordStandIn['addAttachment']> }> = {},
    where?: Where,
  ) {
    const attachments: Record<string, unknown> = {};
    const opts = Object.entries(options).map(([k, v]) => {
      if (typeof v === 'string') return { name: k, type: ApplicationCommandOptionType.String, value: v };
      attachments[v.attachment.id] = v.attachment;
      return { name: k, type: ApplicationCommandOptionType.Attachment, value: v.attachment.id };
    });
    return this.base(
      u,
      InteractionType.ApplicationCommand,
      {
        id: snowflake(),
        name,
        type: ApplicationCommandType.ChatInput,
        ...(where === 'dm' ? {} : { guild_id: this.guildId }),
        options: opts,
        ...(Object.keys(attachments).length ? { resolved: { attachments } } : {}),
      },
      where,
    );
  }

  /** A user types into an option that has autocomplete. */
  autocomplete(u: StandInUser, name: string, option: string, value: string, where?: Where) {
    return this.base(
      u,
      InteractionType.ApplicationCommandAutocomplete,
      {
        id: snowflake(),
        name,
        type: ApplicationCommandType.ChatInput,
        options: [{ name: option, type: ApplicationCommandOptionType.String, value, focused: true }],
      },
      where,
    );
  }

  /**
   * A user presses a button on a message the bot sent. Discord shows an ephemeral message to its
   * user only, so nobody else can press its buttons: asking for that is a mistake in the test.
   */
  press(u: StandInUser, message: APIMessage, customId: string) {
    const rec = this.interactions.find((r) => r.original?.id === message.id);
    if (rec && ((message.flags ?? 0) & 64) !== 0 && rec.userId !== u.user.id)
      throw new Error(
        'Discord shows an ephemeral message only to its user: nobody else can press its buttons',
      );
    return this.base(
      u,
      InteractionType.MessageComponent,
      { custom_id: customId, component_type: ComponentType.Button },
      message.channel_id,
      { message },
    );
  }

  /** A user writes in a channel or thread. */
  say(u: StandInUser, channelId: string, content: string): APIMessage {
    const m = this.message(channelId, u.user, content);
    this.gateway.broadcast(GatewayDispatchEvents.MessageCreate, {
      ...m,
      guild_id: this.guildId,
      member: { ...this.member(u), user: undefined },
    });
    return m;
  }

  private message(
    channelId: string,
    author: APIUser,
    content: string,
    body: Record<string, unknown> = {},
    id = snowflake(),
  ): APIMessage {
    return {
      id,
      channel_id: channelId,
      author,
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: (body.embeds as APIEmbed[]) ?? [],
      components: (body.components as never) ?? [],
      pinned: false,
      type: 0,
      flags: (body.flags as number) ?? 0,
    } as APIMessage;
  }

  private storeMessage(channelId: string, m: APIMessage): APIMessage {
    const list = this.messages.get(channelId) ?? [];
    list.push(m);
    this.messages.set(channelId, list);
    this.gateway.broadcast(GatewayDispatchEvents.MessageCreate, { ...m, guild_id: this.guildId });
    for (const w of this.messageWaiters.splice(0)) w();
    return m;
  }

  private newThread(parentId: string, name: string, ownerId: string, autoArchive: number): Channel {
    const parent = this.channels.get(parentId)!;
    const thread: Channel = {
      id: snowflake(),
      type:
        parent.type === ChannelType.GuildAnnouncement
          ? ChannelType.AnnouncementThread
          : ChannelType.PublicThread,
      guild_id: this.guildId,
      parent_id: parentId,
      name,
      owner_id: ownerId,
      last_message_id: null,
      message_count: 0,
      member_count: 1,
      rate_limit_per_user: 0,
      thread_metadata: {
        archived: false,
        auto_archive_duration: autoArchive,
        archive_timestamp: new Date().toISOString(),
        locked: false,
      },
      applied_tags: [],
      flags: 0,
    };
    this.channels.set(thread.id, thread);
    this.gateway.broadcast(GatewayDispatchEvents.ThreadCreate, { ...thread, newly_created: true });
    return thread;
  }

  /** Waits until a message in `channelId` satisfies `pred`. */
  async waitForMessage(
    channelId: string,
    pred: (m: APIMessage) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<APIMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = (this.messages.get(channelId) ?? []).find(pred);
      if (m) return m;
      if (Date.now() > deadline)
        throw new Error(
          `no message ${what} in ${channelId} within ${timeoutMs} ms; messages: ${JSON.stringify((this.messages.get(channelId) ?? []).map((x) => x.content)).slice(-1500)}; refusals ${JSON.stringify(this.refusals).slice(0, 800)}`,
        );
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.messageWaiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The slowest first response of any interaction so far (Discord's limit is 3 s). */
  maxAckMs(): number {
    return Math.max(0, ...this.interactions.map((i) => i.firstResponseMs ?? Number.POSITIVE_INFINITY));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const p = url.pathname;
    const att = /^\/attachments\/(.+)$/.exec(p);
    if (att && req.method === 'GET') {
      const a = this.attachments.get(decodeURIComponent(att[1]!));
      if (!a || a.expired)
        return void res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('This content is no longer available.');
      res.writeHead(200, { 'content-type': a.contentType, 'content-length': a.data.length }).end(a.data);
      return;
    }
    const method = req.method ?? 'GET';
    const m = /^\/api\/v10(\/.*)$/.exec(p);
    const route = m ? decodeURIComponent(m[1]!) : p;
    this.requests.push({ method, route, at: performance.now() });
    const headers: Record<string, string> = {};
    const send = (status: number, body?: unknown) => {
      if (body === undefined) return void res.writeHead(status, headers).end();
      res.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const refuse = (e: DiscordError, why: string) => {
      this.refusals.push({ method, route, status: e.status, code: e.body.code, why });
      if (e.status === 401 || e.status === 403) this.invalidRequests++;
      send(e.status, e.body);
    };
    const handler = m ? this.routeFor(method, route) : undefined;
    if (!handler) return refuse(ERRORS.notFound(), 'a route Discord does not have');
    if (handler.auth && req.headers.authorization !== `Bot ${this.token}`)
      return refuse(ERRORS.unauthorized(), 'no or a wrong bot token');

    // Rate limits first, as Discord does: a request while its bucket (or the bot) is limited gets 429.
    const bucket = handler.bucket;
    const now = Date.now();
    const blockedUntil = Math.max(
      this.globalBlockedUntil,
      bucket ? (this.buckets.get(bucket)?.blockedUntil ?? 0) : 0,
    );
    if (now < blockedUntil) {
      this.refusals.push({
        method,
        route,
        status: 429,
        code: 0,
        why: 'sent while rate limited (before Retry-After)',
      });
      return this.rateLimited(res, (blockedUntil - now) / 1000, now < this.globalBlockedUntil, bucket);
    }
    const inj = this.injections.find(
      (f) => (!f.method || f.method === method) && f.route.test(route) && f.times > 0 && now < f.until,
    );
    if (inj) {
      inj.times--;
      return this.serveFault(res, method, route, inj.fault, bucket);
    }
    if (bucket) {
      const b = this.buckets.get(bucket) ?? { remaining: MESSAGE_BUCKET.limit, resetAt: 0, blockedUntil: 0 };
      if (now >= b.resetAt) {
        b.remaining = MESSAGE_BUCKET.limit;
        b.resetAt = now + MESSAGE_BUCKET.windowMs;
      }
      this.buckets.set(bucket, b);
      if (b.remaining <= 0) {
        // Discord's flow control: discord.js waits it out. Not the bot's fault when it could not
        // know (a restarted bot knows no bucket); a request before Retry-After is (above).
        this.bucketLimited.push({ method, route });
        b.blockedUntil = b.resetAt;
        return this.rateLimited(res, (b.resetAt - now) / 1000, false, bucket);
      }
      b.remaining--;
      Object.assign(headers, bucketHeaders(bucket, b.remaining, b.resetAt));
    }
    const body = raw.length ? (parseBody(raw, req.headers['content-type']) as Record<string, unknown>) : {};
    const out = handler.run(body, url);
    if ('error' in out) return refuse(out.error, out.why);
    send(out.status, out.body);
  }

  private serveFault(
    res: http.ServerResponse,
    method: string,
    route: string,
    f: Fault,
    bucket?: string,
  ): void {
    if (f.kind === 'rateLimit') {
      this.injected.push({ method, route, status: 429 });
      const until = Date.now() + f.retryAfter * 1000;
      if (f.global) this.globalBlockedUntil = until;
      else if (bucket) {
        const b = this.buckets.get(bucket) ?? { remaining: 0, resetAt: until, blockedUntil: 0 };
        b.blockedUntil = until;
        this.buckets.set(bucket, b);
      }
      this.rateLimited(res, f.retryAfter, f.global ?? false, bucket, f.scope);
      return;
    }
    if (f.kind === 'server') {
      this.injected.push({ method, route, status: f.status });
      res.writeHead(f.status, { 'content-type': 'text/html' }).end(`<html><body>${f.status}</body></html>`);
      return;
    }
    this.injected.push({ method, route, status: f.error.status });
    if (f.error.status === 401 || f.error.status === 403) this.invalidRequests++;
    res.writeHead(f.error.status, { 'content-type': 'application/json' }).end(JSON.stringify(f.error.body));
  }

  /** Discord's 429: Retry-After and X-RateLimit-* headers, and `{message, retry_after, global}`. */
  private rateLimited(
    res: http.ServerResponse,
    retryAfter: number,
    global: boolean,
    bucket: string | undefined,
    scope: 'user' | 'shared' = 'user',
  ): void {
    if (scope !== 'shared') this.invalidRequests++;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'retry-after': String(Math.ceil(retryAfter)),
      'x-ratelimit-scope': global ? 'global' : scope,
    };
    if (global) headers['x-ratelimit-global'] = 'true';
    else if (bucket) Object.assign(headers, bucketHeaders(bucket, 0, Date.now() + retryAfter * 1000));
    res
      .writeHead(429, headers)
      .end(JSON.stringify({ message: 'You are being rate limited.', retry_after: retryAfter, global }));
  }

  /** The REST routes, each with whether it needs the bot token and its rate-limit bucket. */
  private routeFor(
    method: string,
    route: string,
  ):
    | {
        auth: boolean;
        bucket?: string;
        run(
          body: Record<string, unknown>,
          url: URL,
        ): { status: number; body?: unknown } | { error: DiscordError; why: string };
      }
    | undefined {
    const at = (re: RegExp, ...methods: string[]) => (methods.includes(method) ? re.exec(route) : null);
    const callback = at(/^\/interactions\/(\d+)\/([^/]+)\/callback$/, 'POST');
    if (callback) return { auth: false, run: (b, url) => this.callback(callback[2]!, b, url) };
    const hookMessage = at(
      /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(@original|\d+)$/,
      'GET',
      'PATCH',
      'DELETE',
    );
    if (hookMessage)
      return { auth: false, run: (b) => this.webhookMessage(method, hookMessage[2]!, hookMessage[3]!, b) };
    const hook = at(/^\/webhooks\/(\d+)\/([^/]+)$/, 'POST');
    if (hook) return { auth: false, run: (b) => this.followUp(hook[2]!, b) };
    if (at(/^\/gateway\/bot$/, 'GET'))
      return {
        auth: true,
        run: () => ({
          status: 200,
          body: {
            url: `${this.url.replace(/^http/, 'ws')}/gateway`,
            shards: 1,
            session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
          },
        }),
      };
    if (at(/^\/applications\/(\d+)(\/guilds\/\d+)?\/commands$/, 'PUT'))
      return {
        auth: true,
        run: (b) => {
          this.deployedCommands = { route, body: b };
          return {
            status: 200,
            body: (b as unknown as unknown[]).map((c) => ({
              ...(c as object),
              id: snowflake(),
              application_id: this.applicationId,
              version: snowflake(),
            })),
          };
        },
      };
    const getChannel = at(/^\/channels\/(\d+)$/, 'GET');
    if (getChannel)
      return {
        auth: true,
        run: () => {
          const c = this.channel(getChannel[1]!);
          return c
            ? { status: 200, body: c }
            : { error: ERRORS.unknownChannel(), why: 'the channel is gone' };
        },
      };
    const threads = at(/^\/channels\/(\d+)\/threads$/, 'POST');
    if (threads) return { auth: true, run: (b) => this.createThread(threads[1]!, b) };
    const edit = at(/^\/channels\/(\d+)\/messages\/(\d+)$/, 'PATCH');
    if (edit) return { auth: true, run: (b) => this.editMessage(edit[1]!, edit[2]!, b) };
    const messages = at(/^\/channels\/(\d+)\/messages$/, 'POST');
    if (messages)
      return {
        auth: true,
        bucket: `messages:${messages[1]}`,
        run: (b) => this.createMessage(messages[1]!, b),
      };
    return undefined;
  }

  private callback(token: string, body: Record<string, unknown>, url: URL) {
    const rec = this.byToken.get(token);
    if (!rec) return { error: ERRORS.unknownInteraction(), why: 'no such interaction' };
    const ms = performance.now() - rec.dispatchedAt;
    if (rec.responses.length) return { error: ERRORS.alreadyAcknowledged(), why: 'a second first response' };
    if (ms > ACK_DEADLINE_MS)
      return {
        error: ERRORS.unknownInteraction(),
        why: `first response after ${ms.toFixed(0)} ms (Discord allows 3 s)`,
      };
    const resp = body as unknown as Response;
    const type = rec.payload.type as number;
    if (!ALLOWED_CALLBACKS[type]?.includes(resp.type))
      return {
        error: ERRORS.invalidForm([
          {
            path: 'type',
            code: 'INTERACTION_RESPONSE_TYPE_INVALID',
            message: `Response type ${resp.type} is not valid for interaction type ${type}.`,
          },
        ]),
        why: `callback type ${resp.type} for interaction type ${type}`,
      };
    const data = (resp.data ?? {}) as Record<string, unknown>;
    const problem =
      resp.type === InteractionResponseType.ApplicationCommandAutocompleteResult
        ? choiceProblems(data.choices)
        : resp.type === InteractionResponseType.ChannelMessageWithSource ||
            resp.type === InteractionResponseType.UpdateMessage
          ? messageProblems(data, resp.type === InteractionResponseType.UpdateMessage)
          : undefined;
    if (problem) return { error: problem, why: 'the response breaks a Discord limit' };
    rec.firstResponseMs = ms;
    rec.responses.push(resp);
    const ch = rec.payload.channel_id as string;
    if (
      resp.type === InteractionResponseType.ChannelMessageWithSource ||
      resp.type === InteractionResponseType.DeferredChannelMessageWithSource
    )
      // A deferral shows "thinking…" as the original message; its flags (ephemeral) stay.
      rec.original = {
        ...this.message(ch, this.botUser, resp.data?.content ?? '', { ...data, flags: data.flags }),
        interaction_metadata: {
          id: rec.id,
          type: rec.payload.type,
          user: (rec.payload.member as { user?: APIUser } | undefined)?.user ?? rec.payload.user,
          authorizing_integration_owners: rec.payload.authorizing_integration_owners,
        },
      } as never;
    rec.changed();
    if (url.searchParams.get('with_response') === 'true')
      return {
        status: 200,
        body: { interaction: { id: rec.id, type }, resource: { type: resp.type, message: rec.original } },
      };
    return { status: 204 };
  }

  /** The interaction's token is its only credential: unknown or older than 15 minutes, refused. */
  private liveToken(token: string): InteractionRecord | { error: DiscordError; why: string } {
    const rec = this.byToken.get(token);
    if (!rec) return { error: ERRORS.unknownWebhook(), why: 'no such interaction token' };
    if (rec.expired)
      return { error: ERRORS.invalidWebhookToken(), why: 'interaction token expired (15 minutes)' };
    if (!rec.responses.length)
      return { error: ERRORS.unknownWebhook(), why: 'the interaction was never acknowledged' };
    return rec;
  }

  private webhookMessage(method: string, token: string, which: string, body: Record<string, unknown>) {
    const rec = this.liveToken(token);
    if ('error' in rec) return rec;
    const target =
      which === '@original'
        ? rec.originalDeleted
          ? undefined
          : rec.original
        : rec.followUps.find((f) => f.id === which);
    if (!target) return { error: ERRORS.unknownMessage(), why: `no message ${which}` };
    if (method === 'GET') return { status: 200, body: target };
    if (method === 'DELETE') {
      if (which === '@original') rec.originalDeleted = true;
      else rec.followUps.splice(rec.followUps.indexOf(target as APIMessage), 1);
      rec.changed();
      return { status: 204 };
    }
    const problem = messageProblems(body, true);
    if (problem) return { error: problem, why: 'the edit breaks a Discord limit' };
    Object.assign(target, {
      ...(body.content !== undefined ? { content: String(body.content ?? '') } : {}),
      ...(body.embeds ? { embeds: body.embeds } : {}),
      ...(body.components ? { components: body.components } : {}),
      edited_timestamp: new Date().toISOString(),
    });
    rec.changed();
    return { status: 200, body: target };
  }

  private followUp(token: string, body: Record<string, unknown>) {
    const rec = this.liveToken(token);
    if ('error' in rec) return rec;
    const problem = messageProblems(body, false);
    if (problem) return { error: problem, why: 'the follow-up breaks a Discord limit' };
    const f = this.message(rec.payload.channel_id as string, this.botUser, String(body.content ?? ''), body);
    rec.followUps.push(f);
    rec.changed();
    return { status: 200, body: f };
  }

  private createThread(channelId: string, b: Record<string, unknown>) {
    const parent = this.channel(channelId);
    if (!parent) return { error: ERRORS.unknownChannel(), why: 'the channel is gone' };
    const forum = parent.type === ChannelType.GuildForum || parent.type === ChannelType.GuildMedia;
    if (!forum && parent.type !== ChannelType.GuildText && parent.type !== ChannelType.GuildAnnouncement)
      return { error: ERRORS.wrongChannelType(), why: `a thread in a channel of type ${parent.type}` };
    const perms = this.permissionsIn(channelId);
    const need = forum
      ? PermissionFlagsBits.ViewChannel | PermissionFlagsBits.SendMessages
      : PermissionFlagsBits.ViewChannel | PermissionFlagsBits.CreatePublicThreads;
    if ((perms & need) !== need)
      return { error: ERRORS.missingPermissions(), why: 'creating a thread without permission' };
    const name = b.name as string | undefined;
    const duration = (b.auto_archive_duration as number | undefined) ?? 4320;
    const problems = [];
    if (typeof name !== 'string' || [...name].length < 1 || [...name].length > 100)
      problems.push({
        path: 'name',
        code: 'BASE_TYPE_BAD_LENGTH',
        message: 'Must be between 1 and 100 in length.',
      });
    if (!THREAD_ARCHIVE_DURATIONS.includes(duration))
      problems.push({
        path: 'auto_archive_duration',
        code: 'BASE_TYPE_CHOICES',
        message: 'Value must be one of (60, 1440, 4320, 10080).',
      });
    if (problems.length)
      return { error: ERRORS.invalidForm(problems), why: 'a thread name or duration Discord refuses' };
    // A forum post starts with a message (its id is the thread's).
    const starter = b.message as Record<string, unknown> | undefined;
    if (forum) {
      if (!starter)
        return {
          error: ERRORS.invalidForm([
            { path: 'message', code: 'BASE_TYPE_REQUIRED', message: 'This field is required' },
          ]),
          why: 'a forum post without a message',
        };
      const problem = messageProblems(starter, false);
      if (problem) return { error: problem, why: "the forum post's message breaks a Discord limit" };
    }
    const thread = this.newThread(channelId, name!, this.applicationId, duration);
    if (forum) {
      const m = this.message(thread.id, this.botUser, String(starter!.content ?? ''), starter!, thread.id);
      this.storeMessage(thread.id, m);
      return { status: 201, body: { ...thread, message: m } };
    }
    return { status: 201, body: thread };
  }

  /** PATCH a message of the bot's own (content, embeds, components), as Discord allows. */
  private editMessage(channelId: string, messageId: string, b: Record<string, unknown>) {
    const c = this.channel(channelId);
    if (!c) return { error: ERRORS.unknownChannel(), why: 'editing in a deleted or unknown channel' };
    const target = (this.messages.get(channelId) ?? []).find((m) => m.id === messageId);
    if (!target) return { error: ERRORS.unknownMessage(), why: `no message ${messageId}` };
    if (target.author.id !== this.botUser.id)
      return { error: ERRORS.missingPermissions(), why: "editing another user's message" };
    if (c.thread_metadata?.locked) return { error: ERRORS.threadLocked(), why: 'editing in a locked thread' };
    const problem = messageProblems(b, true);
    if (problem) return { error: problem, why: 'the edit breaks a Discord limit' };
    Object.assign(target, {
      ...(b.content !== undefined ? { content: String(b.content ?? '') } : {}),
      ...(b.embeds ? { embeds: b.embeds } : {}),
      ...(b.components ? { components: b.components } : {}),
      edited_timestamp: new Date().toISOString(),
    });
    this.gateway.broadcast(GatewayDispatchEvents.MessageUpdate, { ...target, guild_id: this.guildId });
    for (const w of this.messageWaiters.splice(0)) w();
    return { status: 200, body: target };
  }

  private createMessage(channelId: string, b: Record<string, unknown>) {
    const c = this.channel(channelId);
    if (!c) return { error: ERRORS.unknownChannel(), why: 'posting to a deleted or unknown channel' };
    if (c.type === ChannelType.GuildForum)
      return { error: ERRORS.cannotSendInForum(), why: 'a message in a forum' };
    const perms = this.permissionsIn(channelId);
    const need = isThread(c.type)
      ? PermissionFlagsBits.SendMessagesInThreads
      : PermissionFlagsBits.SendMessages;
    if ((perms & (need | PermissionFlagsBits.ViewChannel)) !== (need | PermissionFlagsBits.ViewChannel))
      return { error: ERRORS.missingPermissions(), why: 'posting without permission' };
    // Without Manage Threads, a locked thread takes no posts; an archived one is unarchived by a post.
    if (c.thread_metadata?.locked) return { error: ERRORS.threadLocked(), why: 'posting to a locked thread' };
    const problem = messageProblems(b, false);
    if (problem) return { error: problem, why: 'the message breaks a Discord limit' };
    if (c.thread_metadata?.archived) this.updateThread(c.id, { archived: false });
    return {
      status: 200,
      body: this.storeMessage(channelId, this.message(channelId, this.botUser, String(b.content ?? ''), b)),
    };
  }
}

const isThread = (t: ChannelType) =>
  t === ChannelType.PublicThread || t === ChannelType.PrivateThread || t === ChannelType.AnnouncementThread;

function bucketHeaders(bucket: string, remaining: number, resetAt: number): Record<string, string> {
  return {
    'x-ratelimit-limit': String(MESSAGE_BUCKET.limit),
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': (resetAt / 1000).toFixed(3),
    'x-ratelimit-reset-after': (Math.max(0, resetAt - Date.now()) / 1000).toFixed(3),
    'x-ratelimit-bucket': Buffer.from(bucket.split(':')[0]!).toString('hex'),
  };
}

/** discord.js sends JSON, or multipart with a `payload_json` part when files are attached. */
function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (contentType?.startsWith('multipart/form-data')) {
    const m = /name="payload_json"\r\n(?:[^\r\n]*\r\n)*\r\n([\s\S]*?)\r\n--/.exec(raw.toString('utf8'));
    return m ? JSON.parse(m[1]!) : {};
  }
  return JSON.parse(raw.toString('utf8'));
}
