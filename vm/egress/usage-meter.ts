/**
 * Reads the token usage out of a model API response as it streams past the proxy, without
 * touching what the guest receives: the proxy hands it a copy of each chunk as it arrives
 * (compressed or not), and the meter decodes that copy itself.
 *
 * - Encodings: identity, gzip, deflate and br. Nothing else can be read here (Node 20 has no
 *   zstd), so the proxy never asks the model API for anything else and refuses an answer in any
 *   other encoding (`decodable`).
 * - Server-sent events: `message_start` carries the model and the input side (uncached input,
 *   cache reads, cache writes), `message_delta` the output tokens (and, from newer APIs, updated
 *   input figures); the last value of each counter wins. Events split anywhere — across chunks,
 *   inside a UTF-8 character, CR LF or LF line ends — are reassembled.
 * - JSON: the message's `usage` (the body is kept up to 8 MiB; the proxy reads an error's message
 *   from it too).
 * - The result is known when the decoder has emitted its last byte — never earlier — or, for a
 *   response cut short (the guest went away, a timeout), when what had arrived is decoded: the
 *   input tokens of a cut stream were billed all the same.
 *
 * The host counts tokens itself, so a guest cannot under-report them.
 */
import { PassThrough, type Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import zlib from 'node:zlib';

export interface ModelUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  /** Of the cache writes, those made for an hour (priced higher); absent when the API did not say. */
  cacheCreation1hTokens?: number;
}

export interface MeterResult {
  usage: ModelUsage | undefined;
  /** A JSON body, decoded (at most 8 MiB); empty for server-sent events. */
  body: string;
  /** The decoder reached the end of a whole response (false: cut short, or undecodable). */
  complete: boolean;
  /** Why decoding stopped early, if it did. */
  error?: string;
}

interface RawUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_creation?: { ephemeral_1h_input_tokens?: number; ephemeral_5m_input_tokens?: number };
}

const MAX_JSON_BYTES = 8 * 1024 * 1024;
/** An SSE line longer than this is not one the meter needs (usage events are small): skipped. */
const MAX_LINE_CHARS = 1024 * 1024;
const DECODABLE = ['identity', 'gzip', 'x-gzip', 'deflate', 'br'] as const;
/** What the proxy asks the model API for, in order of preference. */
export const METERED_ENCODINGS = ['gzip', 'deflate', 'br'] as const;

/** The encoding of a `content-encoding` value, normalised; '' and `identity` are identity. */
export function normalizeEncoding(header: string | string[] | undefined): string {
  const v = (Array.isArray(header) ? header.join(',') : (header ?? '')).trim().toLowerCase();
  return v === '' ? 'identity' : v;
}

/** Whether the meter can read a response with this content-encoding (one encoding, no stacking). */
export function decodable(encoding: string): boolean {
  return (DECODABLE as readonly string[]).includes(encoding);
}

function decoderFor(encoding: string): Transform {
  // Lenient flushes: a stream cut mid-block still yields what it had.
  const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip(opts);
    case 'deflate':
      return zlib.createInflate(opts);
    case 'br':
      return zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
    default:
      return new PassThrough();
  }
}

export class UsageMeter {
  /** Settles once, with the usage of this response (undefined when it had none). */
  readonly result: Promise<MeterResult>;
  private resolve!: (r: MeterResult) => void;
  private readonly decoder: Transform;
  private readonly text = new StringDecoder('utf8');
  private model = '';
  private readonly usage: RawUsage = {};
  private line = '';
  private skippingLine = false;
  private data: string[] = [];
  private body = '';
  private bodyBytes = 0;
  private ended = false;
  private finished = false;
  private lastWasCr = false;
  private cutShort: string | undefined;

  constructor(
    readonly encoding: string,
    private readonly sse: boolean,
  ) {
    this.result = new Promise((r) => {
      this.resolve = r;
    });
    if (!decodable(encoding)) {
      this.decoder = new PassThrough();
      this.finish(false, `content-encoding ${encoding} cannot be metered`);
      return;
    }
    this.decoder = decoderFor(encoding);
    this.decoder.on('data', (chunk: Buffer) => this.onDecoded(chunk));
    this.decoder.on('end', () => this.finish(!this.cutShort, this.cutShort));
    this.decoder.on('error', (err) => this.finish(false, this.cutShort ?? err.message));
  }

  /** A chunk of the response as it came from the model API. */
  write(chunk: Buffer): void {
    if (this.ended || this.finished) return;
    this.decoder.write(chunk);
  }

  /** The response ended normally. */
  end(): void {
    if (this.ended || this.finished) return;
    this.ended = true;
    this.decoder.end();
  }

  /** The response was cut short: decode what arrived, then settle with what it said. */
  abort(reason: string): void {
    if (this.ended || this.finished) return;
    this.ended = true;
    this.cutShort = reason;
    this.decoder.end();
  }

  private onDecoded(chunk: Buffer): void {
    if (this.finished) return;
    if (!this.sse) {
      if (this.bodyBytes < MAX_JSON_BYTES) {
        this.body += this.text.write(chunk.subarray(0, MAX_JSON_BYTES - this.bodyBytes));
        this.bodyBytes += chunk.length;
      }
      return;
    }
    this.onText(this.text.write(chunk));
  }

  /** SSE: lines end with LF, CR LF or CR; a blank line dispatches the event's data. */
  private onText(s: string): void {
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 10 && this.lastWasCr) {
        // The LF of a CR LF (perhaps in the next chunk): the CR already ended the line.
        this.lastWasCr = false;
        start = i + 1;
        continue;
      }
      this.lastWasCr = false;
      if (c !== 10 && c !== 13) continue;
      this.appendLine(s.slice(start, i));
      this.onLine();
      this.lastWasCr = c === 13;
      start = i + 1;
    }
    if (start < s.length) this.appendLine(s.slice(start));
  }

  private appendLine(part: string): void {
    if (this.skippingLine) return;
    if (this.line.length + part.length > MAX_LINE_CHARS) {
      this.skippingLine = true;
      this.line = '';
      return;
    }
    this.line += part;
  }

  private onLine(): void {
    const line = this.line;
    const skipped = this.skippingLine;
    this.line = '';
    this.skippingLine = false;
    if (skipped) return;
    if (line === '') {
      if (this.data.length) this.onEvent(this.data.join('\n'));
      this.data = [];
      return;
    }
    if (line.startsWith('data:')) {
      const v = line.slice(5);
      this.data.push(v.startsWith(' ') ? v.slice(1) : v);
      if (this.data.length > 1000) this.data = []; // no usage event is that long
    }
  }

  private onEvent(data: string): void {
    try {
      const e = JSON.parse(data) as {
        type?: string;
        message?: { model?: string; usage?: RawUsage };
        usage?: RawUsage;
      };
      if (e.type === 'message_start') {
        if (typeof e.message?.model === 'string') this.model = e.message.model;
        this.take(e.message?.usage);
      } else if (e.type === 'message_delta') this.take(e.usage);
    } catch {
      // Not JSON: not a usage event.
    }
  }

  private take(u: RawUsage | undefined): void {
    if (!u || typeof u !== 'object') return;
    for (const k of [
      'input_tokens',
      'output_tokens',
      'cache_read_input_tokens',
      'cache_creation_input_tokens',
    ] as const) {
      const v = u[k];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) this.usage[k] = Math.floor(v);
    }
    const oneHour = u.cache_creation?.ephemeral_1h_input_tokens;
    if (typeof oneHour === 'number' && Number.isFinite(oneHour) && oneHour >= 0)
      this.usage.cache_creation = { ephemeral_1h_input_tokens: Math.floor(oneHour) };
  }

  private finish(complete: boolean, error?: string): void {
    if (this.finished) return;
    if (this.sse) {
      // A last event without its blank line still counts.
      if (this.line && !this.skippingLine) this.onLine();
      if (this.data.length) this.onEvent(this.data.join('\n'));
    } else {
      this.body += this.text.end();
      try {
        const m = JSON.parse(this.body) as { model?: string; usage?: RawUsage };
        if (typeof m.model === 'string') this.model = m.model;
        this.take(m.usage);
      } catch {
        // Not a (whole) JSON message.
      }
    }
    this.finished = true;
    const u = this.usage;
    const has = u.input_tokens !== undefined || u.output_tokens !== undefined;
    this.resolve({
      usage: has
        ? {
            model: this.model,
            inputTokens: u.input_tokens ?? 0,
            outputTokens: u.output_tokens ?? 0,
            cacheReadTokens: u.cache_read_input_tokens ?? 0,
            cacheCreationTokens: u.cache_creation_input_tokens ?? 0,
            ...(u.cache_creation?.ephemeral_1h_input_tokens !== undefined
              ? { cacheCreation1hTokens: u.cache_creation.ephemeral_1h_input_tokens }
              : {}),
          }
        : undefined,
      body: this.sse ? '' : this.body,
      complete,
      ...(error ? { error } : {}),
    });
  }
}
