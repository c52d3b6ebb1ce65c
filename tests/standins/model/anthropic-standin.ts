/**
 * A stand-in for the Anthropic Messages API on loopback, for the real Claude Code CLI: POST
 * /v1/messages (JSON, or server-sent events when `stream` is set) and /v1/messages/count_tokens,
 * with Anthropic's error shapes. It checks the key of every request against the one configured on
 * the host, and follows a script: the agent's first turn gets a tool call, the turn that carries
 * its result gets a final answer; side requests (titles, summaries) get a short text. Or, given
 * `'script'` for the tool, it follows the directives in the conversation (./tool-script.ts).
 *
 * Like the real API it can:
 * - report prompt caching: the system prompt and tools are the cached prefix (written the first
 *   time a prefix is seen, read after), the messages the uncached input;
 * - send `ping` events, and thinking blocks (with their signature) when asked for thinking;
 * - compress its answers with any encoding the client accepts (gzip, deflate, br), or a fixed one
 *   (including `zstd`, which it cannot really produce: the bytes are a marker, for the proxy to
 *   refuse);
 * - answer scripted trouble, one request at a time: 429 and 529 with `retry-after`, an `error`
 *   event mid-stream, a stall (headers and a first event, then nothing), a slow endless stream.
 *
 * Every request is recorded with the usage served, the encoding used and whether the client went
 * away before the end; a route it does not serve is recorded in `unserved` (and answered 404).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { scriptedReply } from './tool-script.js';

export interface ToolCall {
  name: string;
  input: Record<string, unknown>;
}

export interface Usage {
  input: number;
  output: number;
  cacheRead: number;
  cacheCreation: number;
}

export type Encoding = 'identity' | 'gzip' | 'deflate' | 'br' | 'zstd';

export interface ModelRequestRecord {
  method: string;
  path: string;
  key: string;
  model?: string;
  stream: boolean;
  hasTools: boolean;
  kind: 'tool_call' | 'final' | 'side' | 'refused' | 'count_tokens' | 'scripted' | 'unserved';
  acceptEncoding: string;
  /** The content-encoding of the answer. */
  encoding: Encoding;
  /** The tokens this answer reported (a message served, whole or in part). */
  usage?: Usage;
  /** The client closed the connection before the answer ended. */
  closedEarly: boolean;
  /** When the answer ended or the client went away (epoch ms). */
  endedAt?: number;
}

/** One scripted answer, taken by the next request to /v1/messages. */
export type Scripted =
  | { kind: 'status'; status: number; retryAfter?: number; errorType?: string; message?: string }
  | { kind: 'error-mid-stream' }
  | { kind: 'stall' }
  | { kind: 'slow'; intervalMs: number };

export interface StandInOptions {
  /**
   * `auto`: the first of gzip, br, deflate the request accepts (what a CDN would pick);
   * `rotate`: gzip, br, deflate in turn, each answer the next one the request accepts.
   */
  compression?: Encoding | 'auto' | 'rotate';
  caching?: boolean;
  pings?: boolean;
  /** `auto`: a thinking block when the request asks for thinking. */
  thinking?: boolean | 'auto';
}

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'thinking'; thinking: string; signature: string };

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** Four bytes that open every zstd frame, then junk: the proxy must never forward this blind. */
const ZSTD_MARKER = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x61, 0x00]);

export class ModelStandIn {
  readonly requests: ModelRequestRecord[] = [];
  readonly unserved: { method: string; path: string }[] = [];
  /** Usage of an answer without caching (with caching: output only). */
  readonly usage = { input: 1200, output: 80 };
  readonly script: Scripted[] = [];
  private readonly prefixes = new Set<string>();
  private server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(
    public key: string,
    private readonly tool: ToolCall | 'script',
    private readonly finalText = 'Done: the file is written.',
    public options: StandInOptions = {},
  ) {}

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** The sum of the usage of every answer served. */
  served(): Usage {
    const sum: Usage = { input: 0, output: 0, cacheRead: 0, cacheCreation: 0 };
    for (const r of this.requests) {
      if (!r.usage) continue;
      sum.input += r.usage.input;
      sum.output += r.usage.output;
      sum.cacheRead += r.usage.cacheRead;
      sum.cacheCreation += r.usage.cacheCreation;
    }
    return sum;
  }

  private rotation = 0;

  private pickEncoding(accept: string): Encoding {
    const want = this.options.compression ?? 'identity';
    if (want !== 'auto' && want !== 'rotate') return want;
    const offered = accept
      .toLowerCase()
      .split(',')
      .map((s) => s.trim().split(';')[0]!);
    const usable = (['gzip', 'br', 'deflate'] as const).filter((e) => offered.includes(e));
    if (!usable.length) return 'identity';
    return want === 'auto' ? usable[0]! : usable[this.rotation++ % usable.length]!;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const key = String(req.headers['x-api-key'] ?? req.headers.authorization?.replace(/^Bearer /, '') ?? '');
    const acceptEncoding = String(req.headers['accept-encoding'] ?? '');
    const rec: ModelRequestRecord = {
      method: req.method ?? '',
      path: url.pathname,
      key,
      stream: false,
      hasTools: false,
      kind: 'side',
      acceptEncoding,
      encoding: 'identity',
      closedEarly: false,
    };
    this.requests.push(rec);
    res.on('close', () => {
      rec.closedEarly = !res.writableFinished;
      rec.endedAt = Date.now();
    });
    const encoding = this.pickEncoding(acceptEncoding);
    // Everything written goes through `out`: the encoder when compressing.
    let out: NodeJS.WritableStream = res;
    let flush = () => {};
    const begin = (status: number, headers: Record<string, string>) => {
      rec.encoding = encoding;
      if (encoding === 'identity') {
        res.writeHead(status, headers);
        return;
      }
      res.writeHead(status, { ...headers, 'content-encoding': encoding });
      if (encoding === 'zstd') {
        res.write(ZSTD_MARKER);
        out = new Writable({ write: (_c, _e, cb) => cb(), final: (cb) => res.end(cb) });
        return;
      }
      const enc =
        encoding === 'gzip'
          ? zlib.createGzip()
          : encoding === 'deflate'
            ? zlib.createDeflate()
            : zlib.createBrotliCompress();
      enc.pipe(res);
      enc.on('error', () => res.destroy());
      res.on('close', () => enc.destroy());
      out = enc;
      flush = () =>
        encoding === 'br'
          ? enc.flush(zlib.constants.BROTLI_OPERATION_FLUSH)
          : enc.flush(zlib.constants.Z_SYNC_FLUSH);
    };
    const error = (status: number, type: string, message: string, extra: Record<string, string> = {}) => {
      begin(status, { 'content-type': 'application/json', 'request-id': `req_${Date.now()}`, ...extra });
      out.end(JSON.stringify({ type: 'error', error: { type, message } }));
    };

    if (
      req.method !== 'POST' ||
      (url.pathname !== '/v1/messages' && url.pathname !== '/v1/messages/count_tokens')
    ) {
      rec.kind = 'unserved';
      this.unserved.push({ method: req.method ?? '', path: url.pathname });
      return error(404, 'not_found_error', `no route ${req.method} ${url.pathname}`);
    }
    let body: Record<string, unknown> = {};
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      return error(400, 'invalid_request_error', 'the body is not JSON');
    }
    rec.model = body.model as string | undefined;
    rec.stream = body.stream === true;
    rec.hasTools = Array.isArray(body.tools) && body.tools.length > 0;
    if (key !== this.key) {
      rec.kind = 'refused';
      return error(401, 'authentication_error', 'invalid x-api-key');
    }
    if (url.pathname === '/v1/messages/count_tokens') {
      rec.kind = 'count_tokens';
      begin(200, { 'content-type': 'application/json' });
      out.end(JSON.stringify({ input_tokens: 42 }));
      return;
    }

    const scripted = this.script.shift();
    if (scripted?.kind === 'status') {
      rec.kind = 'scripted';
      return error(
        scripted.status,
        scripted.errorType ?? ERROR_TYPES[scripted.status] ?? 'api_error',
        scripted.message ?? (scripted.status === 529 ? 'Overloaded' : `scripted HTTP ${scripted.status}`),
        scripted.retryAfter !== undefined ? { 'retry-after': String(scripted.retryAfter) } : {},
      );
    }

    const messages = (body.messages ?? []) as { role: string; content: unknown }[];
    const last = messages[messages.length - 1];
    const lastHasToolResult =
      Array.isArray(last?.content) &&
      (last.content as { type: string }[]).some((b) => b.type === 'tool_result');
    const tool = this.tool;
    let blocks: Block[];
    if (tool === 'script' && rec.hasTools) {
      const system = Array.isArray(body.system)
        ? (body.system as { text?: string }[]).map((b) => b.text ?? '').join('\n')
        : String(body.system ?? '');
      const r = scriptedReply(messages as never, system);
      rec.kind = r.kind;
      blocks = r.blocks;
    } else if (
      tool !== 'script' &&
      rec.hasTools &&
      JSON.stringify(body.tools ?? []).includes(`"${tool.name}"`) &&
      !lastHasToolResult
    ) {
      rec.kind = 'tool_call';
      blocks = [
        { type: 'text', text: 'I will write the file now.' },
        { type: 'tool_use', id: `toolu_${Date.now()}`, name: tool.name, input: tool.input },
      ];
    } else if (rec.hasTools) {
      rec.kind = 'final';
      blocks = [{ type: 'text', text: this.finalText }];
    } else {
      blocks = [{ type: 'text', text: 'Lia test' }];
    }
    if (scripted) rec.kind = 'scripted';
    const thinking = this.options.thinking ?? 'auto';
    const wantsThinking = (body.thinking as { type?: string } | undefined)?.type === 'enabled';
    if (thinking === true || (thinking === 'auto' && wantsThinking))
      blocks.unshift({
        type: 'thinking',
        thinking: 'Let me think about what the user asked for.',
        signature: `sig_${createHash('sha256').update(String(Date.now())).digest('base64').slice(0, 40)}`,
      });

    const usage = this.usageFor(body);
    const rawUsage = {
      input_tokens: usage.input,
      output_tokens: usage.output,
      cache_read_input_tokens: usage.cacheRead,
      cache_creation_input_tokens: usage.cacheCreation,
    };
    const model = String(body.model ?? 'claude-sonnet-4-5');
    const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
    const id = `msg_${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
    if (!rec.stream) {
      rec.usage = usage;
      begin(200, { 'content-type': 'application/json' });
      out.end(
        JSON.stringify({
          id,
          type: 'message',
          role: 'assistant',
          model,
          content: blocks,
          stop_reason: stopReason,
          stop_sequence: null,
          usage: rawUsage,
        }),
      );
      return;
    }
    begin(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (type: string, data: Record<string, unknown>) => {
      if (res.destroyed) return;
      out.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
      flush();
    };
    const ping = () => this.options.pings && event('ping', {});
    // The input side is billed from message_start on, the output as it is reported.
    rec.usage = { ...usage, output: 1 };
    event('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...rawUsage, output_tokens: 1 },
      },
    });
    ping();
    if (scripted?.kind === 'stall') return; // headers and message_start, then nothing, ever
    if (scripted?.kind === 'slow') {
      const timer = setInterval(() => event('ping', {}), scripted.intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    let deltas = 0;
    for (const [index, b] of blocks.entries()) {
      if (b.type === 'text') {
        event('content_block_start', { index, content_block: { type: 'text', text: '' } });
        for (const piece of b.text.match(/.{1,12}/gs) ?? []) {
          event('content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
          if (scripted?.kind === 'error-mid-stream' && ++deltas === 1) {
            event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } });
            out.end();
            return;
          }
        }
      } else if (b.type === 'thinking') {
        event('content_block_start', {
          index,
          content_block: { type: 'thinking', thinking: '', signature: '' },
        });
        event('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: b.thinking } });
        event('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } });
      } else {
        event('content_block_start', {
          index,
          content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} },
        });
        event('content_block_delta', {
          index,
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) },
        });
      }
      event('content_block_stop', { index });
      ping();
    }
    rec.usage = usage;
    event('message_delta', {
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: usage.output },
    });
    event('message_stop', {});
    out.end();
  }

  /**
   * Without caching: a fixed count. With caching, as the API counts it: the system prompt and
   * tools are the prefix (written to the cache the first time it is seen, read after), the
   * messages the uncached input; about four characters a token.
   */
  private usageFor(body: Record<string, unknown>): Usage {
    if (!this.options.caching)
      return { input: this.usage.input, output: this.usage.output, cacheRead: 0, cacheCreation: 0 };
    const prefix = JSON.stringify(body.system ?? '') + JSON.stringify(body.tools ?? []);
    const prefixTokens = Math.ceil(prefix.length / 4);
    const input = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
    const hash = createHash('sha256').update(prefix).digest('hex');
    const seen = this.prefixes.has(hash);
    this.prefixes.add(hash);
    return {
      input,
      output: this.usage.output,
      cacheRead: seen ? prefixTokens : 0,
      cacheCreation: seen ? 0 : prefixTokens,
    };
  }
}
