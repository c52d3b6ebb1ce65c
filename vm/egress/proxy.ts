/**
 * The egress proxy on the host: a guest's only way out. Every connection from a guest comes with
 * its task's id — through `accept(taskId, conn)` (a stream the VM's channel carries), or through
 * the task's TCP listener on 127.0.0.1 (`open(taskId)`, which QEMU's user network forwards to);
 * both go down one code path.
 *
 * - Model API: the guest's Claude Code uses `ANTHROPIC_BASE_URL=http://<proxy>`; path-only
 *   requests go to the real model API over HTTPS with the host's key added (whatever key or
 *   authorization the guest sent is dropped), so the key never exists in the guest. Only the
 *   routes Claude Code needs are forwarded (model-api.ts); everything else gets 403. A model call
 *   is first put to the budget gate (per-task and per-user token budgets, on the host side), and
 *   refused with a message the agent shows when a budget is spent.
 * - Metering: every answer forwarded is read by a UsageMeter as it passes (the model API is only
 *   asked for encodings the meter decodes; an answer in any other is refused, never forwarded
 *   blind); its usage is emitted as `usage` when the decoded stream ends.
 * - Other hosts: `CONNECT host:port` (HTTPS_PROXY) or absolute `http://` URLs, to host:port pairs
 *   on the allowlist only (a bare host means port 443); everything else gets 403 with the reason,
 *   and a target that is not a plain host and a port from 1 to 65535 gets 400.
 * - Hostile guests: every handler is guarded (no request can end the process), connections per
 *   task and in total are capped, idle connections are closed, tunnels have a lifetime, model
 *   requests an idle and a total timeout, and a guest that goes away ends its upstream request.
 * - Idle tracking: a model request in flight counts as agent activity, so an agent that is
 *   waiting for the model is not suspended — until the request ends or times out.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { parseHostPort, parsePort } from '../../common/host-port.js';
import type { Logger } from '../../common/logger.js';
import { type ForgeOptions, ForgeRoute, type TaskRepo } from './forge.js';
import { GuestConn } from './guest-conn.js';
import {
  errorBody,
  forwardHeaders,
  modelErrorMessage,
  modelRequestHeaders,
  modelRoute,
  responseHeaders,
} from './model-api.js';
import { decodable, normalizeEncoding, UsageMeter } from './usage-meter.js';

export type BudgetAnswer = { ok: true } | { ok: false; message: string };

/** Says whether a task may make another model call (implemented on the host, from recorded usage). */
export interface BudgetGate {
  check(taskId: string): Promise<BudgetAnswer>;
}

export interface EgressLimits {
  /** Guest connections one task may hold at once (plain requests and tunnels, both paths). */
  connectionsPerTask: number;
  /** Guest connections of all tasks together. */
  connectionsTotal: number;
  /** Model requests one task may have in flight at once. */
  modelRequestsPerTask: number;
  /** A guest connection without a byte either way for this long is closed (not while it waits for the model). */
  connectionIdleMs: number;
  /** The longest a CONNECT tunnel lives. */
  tunnelMaxMs: number;
  /** How long connecting to an allowed host or the model API may take. */
  connectTimeoutMs: number;
  /** A model request with no byte either way for this long is ended (upstream and guest). */
  modelIdleMs: number;
  /** The longest a model request may take. */
  modelMaxMs: number;
  /** The largest model request body (the API's own limit is 32 MB). */
  modelRequestMaxBytes: number;
}

export const DEFAULT_LIMITS: EgressLimits = {
  connectionsPerTask: 64,
  connectionsTotal: 4096,
  modelRequestsPerTask: 16,
  connectionIdleMs: 5 * 60_000,
  tunnelMaxMs: 60 * 60_000,
  connectTimeoutMs: 15_000,
  modelIdleMs: 5 * 60_000,
  modelMaxMs: 30 * 60_000,
  modelRequestMaxBytes: 32 * 1024 * 1024,
};

export interface EgressOptions {
  /** Where model requests go, e.g. https://api.anthropic.com */
  modelBaseUrl: string;
  /** Added to every model request as x-api-key; undefined → requests are refused with a clear 401. */
  apiKey: string | undefined;
  /** host:port pairs (a bare host: port 443) a guest may reach besides the model API. */
  allowHosts: string[];
  /** Asked before every metered model call; none: no budgets. */
  budget?: BudgetGate;
  /** The forge route (`/forge/<owner>/<repo>.git/…`, forge.ts); none: git requests are refused. */
  forge?: ForgeOptions;
  limits?: Partial<EgressLimits>;
  logger?: Pick<Logger, 'warn'>;
}

/** Counters for tests and metrics. */
export interface EgressStats {
  connections: number;
  refusedConnections: number;
  modelRequests: number;
  handlerErrors: number;
}

interface TaskEgress {
  listener?: net.Server;
  /** The listener's port, once it listens. */
  opening?: Promise<number>;
  port: number;
  conns: Set<GuestConn>;
  /** Model requests in flight. */
  model: number;
}

const CONNECT_STATUS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * Events: `usage` (taskId, ModelUsage) for every metered answer; `activity` (taskId) when a model
 * request starts or ends; `model-refused` (taskId, status, message) when the model API refuses
 * the host's key; `budget-refused` (taskId, message) when the gate refused a model call;
 * `refused` (taskId, message) when a model-API route was refused.
 */
/** A refusal's status as a metric label: a few fixed words, whatever the guest sent. */
export function refusalReason(status: number): string {
  const names: Record<number, string> = {
    400: 'bad_request',
    403: 'not_allowed',
    429: 'rate_or_budget',
    431: 'headers_too_large',
    500: 'proxy_error',
    502: 'upstream',
    503: 'over_cap',
    504: 'timeout',
  };
  return names[status] ?? 'other';
}

export class EgressProxy extends EventEmitter {
  private readonly tasks = new Map<string, TaskEgress>();
  private readonly model: URL;
  private readonly allowed: Set<string>;
  private readonly limits: EgressLimits;
  private readonly http: http.Server;
  private readonly agent: http.Agent;
  private budget: BudgetGate | undefined;
  private readonly forge: ForgeRoute | undefined;
  private connections = 0;
  private readonly counters = { refusedConnections: 0, handlerErrors: 0 };

  constructor(private readonly o: EgressOptions) {
    super();
    this.model = new URL(o.modelBaseUrl);
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.budget = o.budget;
    this.forge = o.forge ? new ForgeRoute(o.forge) : undefined;
    this.allowed = new Set(
      o.allowHosts.map((entry) => {
        const hp = parseHostPort(entry, 443);
        if (!hp) throw new Error(`egress allowlist: "${entry}" is not host or host:port (port 1-65535)`);
        return `${hp.host}:${hp.port}`;
      }),
    );
    const agentOpts = { keepAlive: true, maxSockets: 256, maxFreeSockets: 16, scheduling: 'lifo' as const };
    this.agent = this.model.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    // Never listens: connections are handed to it (accept). Its own timers only run on listen,
    // so every timeout is the proxy's (GuestConn, the model and tunnel timers).
    this.http = http.createServer({ maxHeaderSize: 32 * 1024, keepAliveTimeout: 0, requestTimeout: 0 });
    this.http.on('request', (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.guard(req.socket as unknown as GuestConn, () => this.onRequest(req, res), res),
    );
    this.http.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.guard(socket as GuestConn, () => this.onConnect(req, socket as GuestConn, head)),
    );
    this.http.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) =>
      this.guard(socket as GuestConn, () =>
        this.rawRefuse(socket, 400, 'Lia: the egress proxy does not upgrade connections'),
      ),
    );
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      if (socket.writable && !socket.writableEnded) {
        const text = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
        socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      }
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  /** The budget gate, set by the host worker once it has its database. */
  setBudgetGate(gate: BudgetGate | undefined): void {
    this.budget = gate;
  }

  /**
   * Says which forge repository and branch a task may use (fetch that repository, push only
   * that branch); set by the host before the guest's git needs it. Throws if no forge is
   * configured or the repository is not on LIA__FORGE__ALLOW_REPOS.
   */
  setTaskRepo(taskId: string, repo: TaskRepo): void {
    if (!this.forge) throw new Error('no forge is configured on this host (LIA__FORGE__TOKEN)');
    this.forge.setTaskRepo(taskId, repo);
  }

  /** Forgets a task's repository: its guest reaches no forge any more. */
  clearTaskRepo(taskId: string): void {
    this.forge?.clearTaskRepo(taskId);
  }

  /**
   * Takes a connection from a guest of `taskId` (any byte stream: a TCP socket, a channel
   * stream). Never throws; a connection over the caps gets a 503 and is closed.
   */
  accept(taskId: string, conn: Duplex): void {
    try {
      const t = this.task(taskId);
      if (
        t.conns.size >= this.limits.connectionsPerTask ||
        this.connections >= this.limits.connectionsTotal
      ) {
        this.counters.refusedConnections++;
        const which =
          t.conns.size >= this.limits.connectionsPerTask
            ? `this task already has ${t.conns.size} connections open (the limit)`
            : 'the host has too many guest connections open';
        conn.on('error', () => {});
        this.rawRefuse(conn, 503, `Lia: ${which}; close some and retry`);
        this.gc(taskId);
        return;
      }
      const g = new GuestConn(taskId, conn, this.limits.connectionIdleMs);
      t.conns.add(g);
      this.connections++;
      g.once('close', () => {
        t.conns.delete(g);
        this.connections--;
        this.gc(taskId);
      });
      this.http.emit('connection', g);
    } catch (err) {
      this.counters.handlerErrors++;
      this.o.logger?.warn(
        { taskId, err: (err as Error).message },
        'egress: could not take a guest connection',
      );
      conn.destroy();
    }
  }

  /** Opens (or returns) the task's listener on 127.0.0.1; the VM's network forwards to it. */
  open(taskId: string, port = 0): Promise<number> {
    const t = this.task(taskId);
    if (!t.opening) {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(taskId, socket));
      t.listener = server;
      t.opening = new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
      }).then(
        (p) => {
          t.port = p;
          server.on('error', (err) =>
            this.o.logger?.warn({ taskId, err: err.message }, 'egress: the task listener failed'),
          );
          return p;
        },
        (err) => {
          t.listener = undefined;
          t.opening = undefined;
          this.gc(taskId);
          throw err;
        },
      );
    }
    return t.opening;
  }

  /** Closes the task's listener and every connection of the task (both paths). */
  async close(taskId: string): Promise<void> {
    const t = this.tasks.get(taskId);
    if (!t) return;
    this.tasks.delete(taskId);
    for (const c of t.conns) c.destroy();
    const l = t.listener;
    if (l) await new Promise<void>((r) => l.close(() => r()));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.tasks.keys()].map((id) => this.close(id)));
    this.agent.destroy();
  }

  /** True while a model request of this task is in flight. */
  busy(taskId: string): boolean {
    return (this.tasks.get(taskId)?.model ?? 0) > 0;
  }

  port(taskId: string): number | undefined {
    const t = this.tasks.get(taskId);
    return t?.listener && t.port ? t.port : undefined;
  }

  stats(taskId?: string): EgressStats {
    const one = taskId ? this.tasks.get(taskId) : undefined;
    const ts = taskId ? (one ? [one] : []) : [...this.tasks.values()];
    return {
      connections: ts.reduce((n, t) => n + t.conns.size, 0),
      modelRequests: ts.reduce((n, t) => n + t.model, 0),
      ...this.counters,
    };
  }

  private task(taskId: string): TaskEgress {
    let t = this.tasks.get(taskId);
    if (!t) {
      t = { port: 0, conns: new Set(), model: 0 };
      this.tasks.set(taskId, t);
    }
    return t;
  }

  /** Forgets a task that has nothing open, so the map holds only tasks with something going on. */
  private gc(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (t && !t.listener && t.conns.size === 0 && t.model === 0) this.tasks.delete(taskId);
  }

  /** Runs a handler so that nothing it throws, now or later, reaches the process. */
  private guard(conn: GuestConn, fn: () => unknown, res?: http.ServerResponse): void {
    const fail = (err: unknown) => {
      this.counters.handlerErrors++;
      this.o.logger?.warn(
        { taskId: conn?.taskId, err: (err as Error)?.message },
        'egress: a handler failed; the connection is closed',
      );
      if (res && !res.headersSent && !res.destroyed) {
        this.refuse(res, 500, 'api_error', 'Lia: the egress proxy could not handle this request');
      } else conn?.destroy();
    };
    try {
      const p = fn();
      if (p instanceof Promise) p.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  private refuse(
    res: http.ServerResponse,
    status: number,
    type: string,
    message: string,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    this.emit('refusal', refusalReason(status));
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = errorBody(type, message);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  /** A refusal written on a raw connection (CONNECT, over-cap, upgrade), which then closes. */
  private rawRefuse(conn: Duplex, status: number, message: string): void {
    this.emit('refusal', refusalReason(status));
    const body = errorBody('lia_egress', message);
    if (conn.writable && !conn.writableEnded) {
      conn.end(
        `HTTP/1.1 ${status} ${CONNECT_STATUS[status] ?? 'Error'}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    setTimeout(() => conn.destroy(), 1000).unref();
  }

  private isAllowed(host: string, port: number): boolean {
    return this.allowed.has(`${host}:${port}`);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): unknown {
    const conn = req.socket as unknown as GuestConn;
    const url = req.url ?? '';
    if (url.startsWith('/forge/')) {
      if (!this.forge) {
        return this.refuse(res, 403, 'permission_error', 'Lia: no forge is configured on this host');
      }
      return this.forge.handle(conn.taskId, req, res, (status) =>
        this.emit('refusal', refusalReason(status)),
      );
    }
    if (url.startsWith('/')) return this.onModel(conn, req, res);
    if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return this.forwardAbsolute(req, res, url);
    return this.refuse(
      res,
      400,
      'invalid_request_error',
      'Lia: a request target must be a path or an http:// URL',
    );
  }

  private async onModel(conn: GuestConn, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const taskId = conn.taskId;
    const decision = modelRoute(req.method, req.url);
    if (decision.kind === 'refused') {
      this.emit('refused', taskId, decision.message);
      return this.refuse(res, 403, 'permission_error', decision.message);
    }
    if (decision.kind === 'hello') {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
      return;
    }
    if (!this.o.apiKey) {
      return this.refuse(
        res,
        401,
        'authentication_error',
        'Lia: no model API key is configured on the host (LIA__CLAUDE__API_KEY)',
      );
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.limits.modelRequestMaxBytes) {
      return this.refuse(
        res,
        413,
        'request_too_large',
        `Lia: a model request may be at most ${this.limits.modelRequestMaxBytes} bytes`,
      );
    }
    const t = this.task(taskId);
    if (t.model >= this.limits.modelRequestsPerTask) {
      return this.refuse(
        res,
        429,
        'rate_limit_error',
        `Lia: this task already has ${t.model} model requests in flight (the limit)`,
        { 'retry-after': '1' },
      );
    }

    // In flight from here until the answer is delivered, cut or timed out: exactly once.
    t.model++;
    conn.modelActive++;
    this.emit('activity', taskId);
    let settled = false;
    let upstream: http.ClientRequest | undefined;
    let answer: http.IncomingMessage | undefined;
    let meter: UsageMeter | undefined;
    let lastByte = Date.now();
    const timers: NodeJS.Timeout[] = [];
    const settle = () => {
      if (settled) return;
      settled = true;
      for (const tm of timers) clearTimeout(tm);
      t.model = Math.max(0, t.model - 1);
      conn.modelActive = Math.max(0, conn.modelActive - 1);
      conn.touch();
      this.emit('activity', taskId);
      this.gc(taskId);
    };
    /** Ends the exchange both ways: the model API stops (and bills) no more for it. */
    let wasCut = false;
    const cut = (reason: string, status: number, message: string) => {
      if (wasCut || settled) return;
      wasCut = true;
      meter?.abort(reason);
      upstream?.destroy();
      answer?.destroy();
      if (!res.headersSent) this.refuse(res, status, 'api_error', message);
      else res.destroy();
    };
    res.once('close', () => {
      if (!res.writableFinished) {
        meter?.abort('the guest went away');
        upstream?.destroy();
        answer?.destroy();
      }
      settle();
    });

    if (decision.route.metered && this.budget) {
      let verdict: BudgetAnswer;
      try {
        verdict = await this.budget.check(taskId);
      } catch (err) {
        // The gate failing is no reason to stop an agent: the next call asks again.
        this.o.logger?.warn({ taskId, err: (err as Error).message }, 'egress: the budget gate failed');
        verdict = { ok: true };
      }
      if (settled) return; // the guest went away meanwhile
      if (!verdict.ok) {
        this.emit('budget-refused', taskId, verdict.message);
        // 429 with x-should-retry: false — Claude Code shows the message once and does not retry.
        return this.refuse(res, 429, 'rate_limit_error', verdict.message, { 'x-should-retry': 'false' });
      }
    }

    // Idle: no byte either way (connecting included); total: the whole exchange.
    const idleCheck = () => {
      if (settled) return;
      const left = lastByte + this.limits.modelIdleMs - Date.now();
      if (left > 0) {
        timers.push(setTimeout(idleCheck, left).unref());
        return;
      }
      cut(
        'idle timeout',
        504,
        `Lia: the model API sent nothing for ${Math.round(this.limits.modelIdleMs / 1000)} s; the request was ended`,
      );
    };
    timers.push(setTimeout(idleCheck, this.limits.modelIdleMs).unref());
    timers.push(
      setTimeout(
        () =>
          cut(
            'total timeout',
            504,
            `Lia: the model request took longer than ${Math.round(this.limits.modelMaxMs / 1000)} s; it was ended`,
          ),
        this.limits.modelMaxMs,
      ).unref(),
    );

    const headers = modelRequestHeaders(req.headers, this.o.apiKey, this.model.host);
    const asked = String(headers['accept-encoding']);
    const target = new URL(this.model.href.replace(/\/$/, '') + decision.pathAndQuery);
    const client = target.protocol === 'https:' ? https : http;
    upstream = client.request(target, { method: req.method, headers, agent: this.agent });
    upstream.on('response', (r) => {
      answer = r;
      if (wasCut || settled) return void r.destroy();
      lastByte = Date.now();
      r.on('error', () => meter?.abort('the model API connection failed'));
      const encoding = normalizeEncoding(r.headers['content-encoding']);
      if (!decodable(encoding) || (encoding !== 'identity' && !asked.split(', ').includes(encoding))) {
        // Never forwarded blind: the meter could not count what it cannot read.
        r.destroy();
        upstream?.destroy();
        return this.refuse(
          res,
          502,
          'api_error',
          `Lia: the model API answered in content-encoding "${encoding.slice(0, 40)}", which the proxy cannot meter (asked for ${asked}); the answer was not forwarded`,
        );
      }
      const status = r.statusCode ?? 502;
      const sse = String(r.headers['content-type'] ?? '').includes('text/event-stream');
      const m = new UsageMeter(encoding, sse);
      meter = m;
      void m.result.then(({ usage, body }) => {
        if (usage) this.emit('usage', taskId, usage);
        // The host's key was refused: nothing the agent does will work until the operator fixes it.
        if (status === 401) this.emit('model-refused', taskId, status, modelErrorMessage(body));
      });
      res.writeHead(status, responseHeaders(r.headers));
      r.on('data', (chunk: Buffer) => {
        lastByte = Date.now();
        m.write(chunk);
      });
      r.on('end', () => m.end());
      r.on('aborted', () => m.abort('the model API connection was cut'));
      r.pipe(res);
    });
    upstream.on('error', (err) => {
      if (settled || wasCut) return;
      meter?.abort(err.message);
      if (!res.headersSent)
        this.refuse(res, 502, 'api_error', `Lia: the model API could not be reached: ${err.message}`);
      else res.destroy();
    });
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      lastByte = Date.now();
      bytes += chunk.length;
      if (bytes > this.limits.modelRequestMaxBytes)
        cut(
          'request too large',
          413,
          `Lia: a model request may be at most ${this.limits.modelRequestMaxBytes} bytes`,
        );
    });
    req.pipe(upstream);
  }

  private forwardAbsolute(req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      this.refuse(res, 400, 'invalid_request_error', 'Lia: the request URL does not parse');
      return;
    }
    if (url.protocol !== 'http:') {
      this.refuse(
        res,
        400,
        'invalid_request_error',
        `Lia: only http:// URLs are forwarded as plain requests; use CONNECT for ${url.protocol.slice(0, 20)}`,
      );
      return;
    }
    if (url.username || url.password) {
      this.refuse(res, 400, 'invalid_request_error', 'Lia: URLs with user info are not forwarded');
      return;
    }
    const authority = url.port ? `${url.hostname}:${url.port}` : url.hostname;
    const target = parseHostPort(authority, 80);
    // `new URL` drops a default port and accepts some odd ports; check what was written.
    const writtenPort = /^http:\/\/[^/?#]*:([^/?#]*)/i.exec(raw)?.[1];
    if (!target || (writtenPort !== undefined && parsePort(writtenPort) === undefined)) {
      this.refuse(
        res,
        400,
        'invalid_request_error',
        'Lia: the URL must name a host (letters, digits, dots, dashes, or IPv4) and a port from 1 to 65535',
      );
      return;
    }
    if (!this.isAllowed(target.host, target.port)) {
      this.refuse(
        res,
        403,
        'permission_error',
        `Lia: ${target.host}:${target.port} is not on this host's egress allowlist`,
      );
      return;
    }
    const up = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: url.pathname + url.search,
      headers: forwardHeaders(req.headers, url.host),
      timeout: this.limits.connectTimeoutMs,
    });
    up.on('socket', (s) => s.once('connect', () => up.setTimeout(0)));
    up.on('timeout', () => up.destroy(new Error('connect timeout')));
    up.on('response', (r) => {
      res.writeHead(r.statusCode ?? 502, responseHeaders(r.headers));
      r.on('error', () => res.destroy());
      r.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent)
        this.refuse(res, 502, 'api_error', `Lia: ${target.host} could not be reached: ${err.message}`);
      else res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  private onConnect(req: http.IncomingMessage, socket: GuestConn, head: Buffer): void {
    const raw = req.url ?? '';
    const target = parseHostPort(raw);
    if (!target) {
      this.rawRefuse(
        socket,
        400,
        `Lia: CONNECT needs host:port (a host name or IPv4 address, a port from 1 to 65535); got "${raw.slice(0, 100)}"`,
      );
      return;
    }
    if (!this.isAllowed(target.host, target.port)) {
      this.rawRefuse(
        socket,
        403,
        `Lia: ${target.host}:${target.port} is not on this host's egress allowlist`,
      );
      return;
    }
    let established = false;
    const up = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    const connectTimer = setTimeout(
      () => up.destroy(new Error('connect timeout')),
      this.limits.connectTimeoutMs,
    );
    connectTimer.unref();
    const lifetime = setTimeout(() => {
      up.destroy();
      socket.destroy();
    }, this.limits.tunnelMaxMs);
    lifetime.unref();
    up.once('connect', () => {
      clearTimeout(connectTimer);
      if (socket.destroyed) return void up.destroy();
      established = true;
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', (err) => {
      clearTimeout(connectTimer);
      if (!established) this.rawRefuse(socket, 502, `Lia: ${target.host}:${target.port}: ${err.message}`);
      else socket.destroy();
    });
    up.on('close', () => {
      clearTimeout(lifetime);
      if (!established) return;
      // Upstream is done: let what it sent reach the guest, then close.
      if (!socket.writableEnded) socket.end();
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    });
    socket.once('close', () => {
      clearTimeout(connectTimer);
      clearTimeout(lifetime);
      up.destroy();
    });
  }
}

/** The host's proxy as configured: model API from LIA__CLAUDE__*, other hosts from LIA__VM__EGRESS_*. */
export function egressFromConfig(
  config: {
    claude: { base_url: string; api_key?: string; request_idle_seconds: number; request_max_seconds: number };
    vm: { egress_allow: string[]; egress_max_connections: number };
    forge?: { kind: 'github'; git_url: string; token?: string; allow_repos: string[] };
  },
  extra: { logger?: Pick<Logger, 'warn'>; budget?: BudgetGate } = {},
): EgressProxy {
  return new EgressProxy({
    modelBaseUrl: config.claude.base_url,
    apiKey: config.claude.api_key,
    allowHosts: config.vm.egress_allow,
    forge: config.forge?.token
      ? {
          kind: config.forge.kind,
          gitUrl: config.forge.git_url,
          token: config.forge.token,
          allowRepos: config.forge.allow_repos,
        }
      : undefined,
    limits: {
      connectionsPerTask: config.vm.egress_max_connections,
      modelIdleMs: config.claude.request_idle_seconds * 1000,
      modelMaxMs: config.claude.request_max_seconds * 1000,
    },
    ...extra,
  });
}
