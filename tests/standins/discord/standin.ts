/**
 * A Discord stand-in on loopback for the real discord.js client: the gateway (./gateway.ts) and
 * the REST routes the bot uses — interaction callbacks, follow-ups and edits of the original
 * response, channels, threads, messages, command deployment — and a CDN for attachments. One
 * guild with one text channel. It records every interaction's time to its first response, every
 * message, and any route it does not know (which a test should treat as a failure).
 */
import http from 'node:http';
import type net from 'node:net';
import {
  type APIChannel,
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
} from 'discord-api-types/v10';
import { Gateway } from './gateway.js';

const DISCORD_EPOCH = 1420070400000n;
let counter = 0n;
export const snowflake = (): string =>
  String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (counter++ & 0xfffn));

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

/** One interaction as the stand-in saw it: what was sent, and everything the bot answered. */
export class InteractionRecord {
  readonly dispatchedAt = performance.now();
  firstResponseMs?: number;
  readonly responses: Response[] = [];
  /** The original response message, as created by type 4 or edited later. */
  original?: APIMessage & { flags?: number };
  readonly followUps: APIMessage[] = [];
  private waiters: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly token: string,
    readonly payload: Record<string, unknown>,
  ) {}

  changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `pred` holds for this record (checked on every change). */
  async until<T>(what: string, pred: (r: this) => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred(this);
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `interaction ${(this.payload.data as { name?: string; custom_id?: string })?.name ?? (this.payload.data as { custom_id?: string })?.custom_id}: timed out waiting for ${what}; responses ${JSON.stringify(this.responses).slice(0, 800)}; original ${JSON.stringify(this.original?.content ?? this.original?.embeds)?.slice(0, 800)}`,
        );
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
    const msgs = [this.original, ...this.followUps].filter(Boolean) as APIMessage[];
    for (const m of msgs) {
      if (m.content) parts.push(m.content);
      for (const e of m.embeds ?? [])
        parts.push(
          [e.title, e.description, ...(e.fields ?? []).map((f) => `${f.name}: ${f.value}`)].join('\n'),
        );
    }
    for (const r of this.responses)
      if (r.type === InteractionResponseType.ChannelMessageWithSource && r.data?.content && !this.original)
        parts.push(r.data.content);
    return parts.join('\n');
  }

  get ephemeral(): boolean {
    const first = this.responses[0];
    return Boolean(((first?.data?.flags ?? 0) & 64) !== 0);
  }
}

export class DiscordStandIn {
  readonly token = `standin-token-${snowflake()}`;
  readonly applicationId = snowflake();
  readonly guildId = snowflake();
  readonly channelId = snowflake();
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
  readonly threads: (APIChannel & { parent_id: string })[] = [];
  readonly unknownRoutes: string[] = [];
  readonly attachments = new Map<string, { data: Buffer; contentType: string }>();
  deployedCommands?: { route: string; body: unknown };
  private readonly byToken = new Map<string, InteractionRecord>();
  private readonly server: http.Server;
  private readonly gateway: Gateway;
  private members: StandInUser[] = [];
  private readonly roleIds = new Set<string>();
  private messageWaiters: (() => void)[] = [];
  url = '';

  constructor() {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err) => {
        res.writeHead(500).end(String(err));
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

  addUser(name: string, roles: string[] = []): StandInUser {
    const u = {
      user: { id: snowflake(), username: name, discriminator: '0', global_name: name, avatar: null },
      roles,
    };
    this.members.push(u);
    for (const r of roles) this.roleIds.add(r);
    return u;
  }

  addAttachment(name: string, data: Buffer, contentType: string) {
    const id = snowflake();
    this.attachments.set(`${id}/${name}`, { data, contentType });
    return {
      id,
      filename: name,
      size: data.length,
      url: `${this.url}/attachments/${id}/${encodeURIComponent(name)}`,
      proxy_url: `${this.url}/attachments/${id}/${encodeURIComponent(name)}`,
      content_type: contentType,
    };
  }

  private member(u: StandInUser) {
    return {
      user: u.user,
      roles: u.roles,
      joined_at: new Date(0).toISOString(),
      deaf: false,
      mute: false,
      flags: 0,
      permissions: '2248473465835073',
    };
  }

  private channelPayload() {
    return {
      id: this.channelId,
      type: ChannelType.GuildText,
      guild_id: this.guildId,
      name: 'agents',
      position: 0,
      permission_overwrites: [],
      nsfw: false,
      parent_id: null,
    };
  }

  private guildPayload() {
    return {
      id: this.guildId,
      name: 'Lia test guild',
      icon: null,
      owner_id: this.members[0]?.user.id ?? this.applicationId,
      roles: [
        ...[...this.roleIds].map((id, n) => ({
          id,
          name: `role-${n + 1}`,
          permissions: '0',
          position: n + 1,
          color: 0,
          hoist: false,
          managed: false,
          mentionable: false,
          flags: 0,
        })),
        {
          id: this.guildId,
          name: '@everyone',
          permissions: '1071698660929',
          position: 0,
          color: 0,
          hoist: false,
          managed: false,
          mentionable: false,
          flags: 0,
        },
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
      channels: [this.channelPayload()],
      threads: this.threads,
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

  private base(u: StandInUser, type: InteractionType, data: unknown, extra: Record<string, unknown> = {}) {
    const id = snowflake();
    const token = `itoken-${id}`;
    const payload = {
      id,
      application_id: this.applicationId,
      type,
      token,
      version: 1,
      guild_id: this.guildId,
      channel_id: this.channelId,
      channel: this.channelPayload(),
      member: this.member(u),
      data,
      app_permissions: '2248473465835073',
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': this.guildId },
      context: 0,
      attachment_size_limit: 10 * 1024 * 1024,
      ...extra,
    };
    const rec = new InteractionRecord(id, token, payload);
    this.interactions.push(rec);
    this.byToken.set(token, rec);
    if (!this.gateway.broadcast(GatewayDispatchEvents.InteractionCreate, payload))
      throw new Error('no bot is connected to the gateway');
    return rec;
  }

  /** A user runs a slash command. Options: strings, or `{ attachment }` from addAttachment. */
  slash(
    u: StandInUser,
    name: string,
    options: Record<string, string | { attachment: ReturnType<DiscordStandIn['addAttachment']> }> = {},
  ) {
    const attachments: Record<string, unknown> = {};
    const opts = Object.entries(options).map(([k, v]) => {
      if (typeof v === 'string') return { name: k, type: ApplicationCommandOptionType.String, value: v };
      attachments[v.attachment.id] = v.attachment;
      return { name: k, type: ApplicationCommandOptionType.Attachment, value: v.attachment.id };
    });
    return this.base(u, InteractionType.ApplicationCommand, {
      id: snowflake(),
      name,
      type: ApplicationCommandType.ChatInput,
      guild_id: this.guildId,
      options: opts,
      ...(Object.keys(attachments).length ? { resolved: { attachments } } : {}),
    });
  }

  /** A user types into an option that has autocomplete. */
  autocomplete(u: StandInUser, name: string, option: string, value: string) {
    return this.base(u, InteractionType.ApplicationCommandAutocomplete, {
      id: snowflake(),
      name,
      type: ApplicationCommandType.ChatInput,
      options: [{ name: option, type: ApplicationCommandOptionType.String, value, focused: true }],
    });
  }

  /** A user presses a button on a message the bot sent (e.g. an interaction's original). */
  press(u: StandInUser, message: APIMessage, customId: string) {
    return this.base(
      u,
      InteractionType.MessageComponent,
      { custom_id: customId, component_type: ComponentType.Button },
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
  ): APIMessage {
    return {
      id: snowflake(),
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

  private postMessage(channelId: string, body: Record<string, unknown>): APIMessage {
    const m = this.message(channelId, this.botUser, String(body.content ?? ''), body);
    const list = this.messages.get(channelId) ?? [];
    list.push(m);
    this.messages.set(channelId, list);
    this.gateway.broadcast(GatewayDispatchEvents.MessageCreate, { ...m, guild_id: this.guildId });
    for (const w of this.messageWaiters.splice(0)) w();
    return m;
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
          `no message ${what} in ${channelId} within ${timeoutMs} ms; messages: ${JSON.stringify((this.messages.get(channelId) ?? []).map((x) => x.content)).slice(-1500)}`,
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
    const json = (status: number, body?: unknown) => {
      if (body === undefined) return void res.writeHead(status).end();
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const p = url.pathname;
    const att = /^\/attachments\/(.+)$/.exec(p);
    if (att && req.method === 'GET') {
      const a = this.attachments.get(decodeURIComponent(att[1]!));
      if (!a) return json(404, { message: 'Not Found', code: 0 });
      res.writeHead(200, { 'content-type': a.contentType, 'content-length': a.data.length }).end(a.data);
      return;
    }
    const m = /^\/api\/v10(\/.*)$/.exec(p);
    if (!m) return this.unknown(req, res, p);
    const route = decodeURIComponent(m[1]!);
    const body = raw.length ? parseBody(raw, req.headers['content-type']) : {};
    const authed = req.headers.authorization === `Bot ${this.token}`;
    let r: RegExpExecArray | null;

    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(route)) && req.method === 'POST') {
      const rec = this.byToken.get(r[2]!);
      if (!rec) return json(404, { message: 'Unknown interaction', code: 10062 });
      if (rec.responses.length)
        return json(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
      rec.firstResponseMs = performance.now() - rec.dispatchedAt;
      const resp = body as Response;
      rec.responses.push(resp);
      if (
        resp.type === InteractionResponseType.ChannelMessageWithSource ||
        resp.type === InteractionResponseType.UpdateMessage
      )
        rec.original = {
          ...this.message(this.channelId, this.botUser, resp.data?.content ?? '', resp.data ?? {}),
          interaction_metadata: { id: rec.id },
        } as never;
      rec.changed();
      if (url.searchParams.get('with_response') === 'true')
        return json(200, {
          interaction: { id: rec.id, type: rec.payload.type },
          resource: { type: resp.type, message: rec.original },
        });
      return json(204);
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(@original|\d+)$/.exec(route))) {
      const rec = this.byToken.get(r[2]!);
      if (!rec) return json(404, { message: 'Unknown Webhook', code: 10015 });
      if (req.method === 'GET')
        return rec.original
          ? json(200, rec.original)
          : json(404, { message: 'Unknown Message', code: 10008 });
      if (req.method === 'PATCH') {
        const b = body as Record<string, unknown>;
        if (r[3] === '@original') {
          const prev = rec.original ?? this.message(this.channelId, this.botUser, '', {});
          rec.original = {
            ...prev,
            ...(b.content !== undefined ? { content: String(b.content) } : {}),
            ...(b.embeds ? { embeds: b.embeds as APIEmbed[] } : {}),
            ...(b.components ? { components: b.components as never } : {}),
            edited_timestamp: new Date().toISOString(),
          };
          rec.changed();
          return json(200, rec.original);
        }
        const f = rec.followUps.find((x) => x.id === r![3]);
        if (!f) return json(404, { message: 'Unknown Message', code: 10008 });
        Object.assign(f, b);
        rec.changed();
        return json(200, f);
      }
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/webhooks\/(\d+)\/([^/]+)$/.exec(route)) && req.method === 'POST') {
      const rec = this.byToken.get(r[2]!);
      if (!rec) return json(404, { message: 'Unknown Webhook', code: 10015 });
      const f = this.message(
        this.channelId,
        this.botUser,
        String((body as { content?: string }).content ?? ''),
        body as Record<string, unknown>,
      );
      rec.followUps.push(f);
      rec.changed();
      return json(200, f);
    }
    if (!authed) return json(401, { message: '401: Unauthorized', code: 0 });
    if (route === '/gateway/bot' && req.method === 'GET') {
      return json(200, {
        url: `${this.url.replace(/^http/, 'ws')}/gateway`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
      });
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/applications\/(\d+)(\/guilds\/\d+)?\/commands$/.exec(route)) && req.method === 'PUT') {
      this.deployedCommands = { route, body };
      return json(
        200,
        (body as unknown[]).map((c) => ({
          ...(c as object),
          id: snowflake(),
          application_id: this.applicationId,
          version: snowflake(),
        })),
      );
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/channels\/(\d+)$/.exec(route)) && req.method === 'GET') {
      if (r[1] === this.channelId) return json(200, this.channelPayload());
      const t = this.threads.find((x) => x.id === r![1]);
      return t ? json(200, t) : json(404, { message: 'Unknown Channel', code: 10003 });
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/channels\/(\d+)\/threads$/.exec(route)) && req.method === 'POST') {
      if (r[1] !== this.channelId) return json(404, { message: 'Unknown Channel', code: 10003 });
      const b = body as { name: string; type?: number; auto_archive_duration?: number };
      if (!b.name || b.name.length > 100)
        return json(400, {
          message: 'Invalid Form Body',
          code: 50035,
          errors: { name: 'BASE_TYPE_BAD_LENGTH' },
        });
      const thread = {
        id: snowflake(),
        type: b.type ?? ChannelType.PublicThread,
        guild_id: this.guildId,
        parent_id: this.channelId,
        name: b.name,
        owner_id: this.applicationId,
        last_message_id: null,
        message_count: 0,
        member_count: 1,
        rate_limit_per_user: 0,
        thread_metadata: {
          archived: false,
          auto_archive_duration: b.auto_archive_duration ?? 1440,
          archive_timestamp: new Date().toISOString(),
          locked: false,
        },
        flags: 0,
      } as unknown as APIChannel & { parent_id: string };
      this.threads.push(thread);
      this.gateway.broadcast(GatewayDispatchEvents.ThreadCreate, { ...thread, newly_created: true });
      return json(201, thread);
    }
    // biome-ignore lint/suspicious/noAssignInExpressions: one route match per branch
    if ((r = /^\/channels\/(\d+)\/messages$/.exec(route)) && req.method === 'POST') {
      const known = r[1] === this.channelId || this.threads.some((t) => t.id === r![1]);
      if (!known) return json(404, { message: 'Unknown Channel', code: 10003 });
      const content = String((body as { content?: string }).content ?? '');
      if (content.length > 2000)
        return json(400, {
          message: 'Invalid Form Body',
          code: 50035,
          errors: {
            content: {
              _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }],
            },
          },
        });
      return json(200, this.postMessage(r[1]!, body as Record<string, unknown>));
    }
    return this.unknown(req, res, route);
  }

  private unknown(req: http.IncomingMessage, res: http.ServerResponse, route: string): void {
    this.unknownRoutes.push(`${req.method} ${route}`);
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ message: '404: Not Found', code: 0 }));
  }
}

/** discord.js sends JSON, or multipart with a `payload_json` part when files are attached. */
function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (contentType?.startsWith('multipart/form-data')) {
    const m = /name="payload_json"\r\n(?:[^\r\n]*\r\n)*\r\n([\s\S]*?)\r\n--/.exec(raw.toString('utf8'));
    return m ? JSON.parse(m[1]!) : {};
  }
  return JSON.parse(raw.toString('utf8'));
}
