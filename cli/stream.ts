/**
 * A task's terminal stream for the command line: the same client as the web page's
 * (web/src/stream.ts; protocol in api/routes/stream.ts), on Node's `ws`.
 *
 * Output chunks are numbered by seq and each is handed on exactly once: when the socket drops it
 * reconnects with backoff from the last seq it has, so nothing is missed or doubled. Input is
 * numbered too, under one random sender id for the life of this client: each piece is kept until
 * the server acknowledges it as stored and sent again, in order, after a reconnect (the server
 * stores a number only once). The terminal's size is sent on every connect, so the PTY follows a
 * window resized while offline.
 *
 * Unlike the page it authenticates with headers (the service token never goes in a URL), and it
 * gives up at once when the server refuses the upgrade for good (401, 403, 404: retrying won't
 * help), where a page would be reloaded.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { StreamServerMessage } from '../api/types.js';
import type { LiaClient } from './client.js';
import { apiError, type CliError, networkCode } from './errors.js';

export type StreamState = Extract<StreamServerMessage, { type: 'state' }>;

export type Connection = 'connecting' | 'open' | 'reconnecting';

export interface StreamEvents {
  output(bytes: Buffer, seq: number): void;
  state(s: StreamState): void;
  /** `why`: while reconnecting, what went wrong (e.g. ECONNREFUSED while Lia restarts). */
  connection(c: Connection, why?: string): void;
  /** Output before this seq was dropped by the retention limit. */
  truncated(message: string): void;
  error(message: string): void;
  /** The server refused the stream for good: the client has stopped. */
  fatal(err: CliError): void;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
/** A socket silent this long is presumed dead (a half-open TCP connection never closes by itself). */
const SILENT_MS = 45_000;
const PING_MS = 15_000;
/** The server takes at most 64 KiB per input frame; 16 Ki UTF-16 units are at most 48 KiB of UTF-8. */
const INPUT_PIECE = 16 * 1024;

export class TaskStream {
  private ws?: WebSocket;
  private lastSeq: number;
  private closed = false;
  private retry = FIRST_RETRY_MS;
  private retryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private lastHeard = 0;
  /** Input not yet acknowledged, oldest first: sent again, in order, on every connect. */
  private unacked: { seq: number; frame: string }[] = [];
  private inputSeq = 0;
  /** Identifies this client's input to the server across reconnects. */
  private readonly sender = randomBytes(16).toString('hex');
  private size?: { cols: number; rows: number };
  private drained: (() => void)[] = [];

  /** `from`: the first seq wanted (1 = the whole stored log). */
  constructor(
    private readonly client: LiaClient,
    private readonly taskId: string,
    private readonly on: StreamEvents,
    from = 1,
  ) {
    this.lastSeq = from - 1;
    this.on.connection('connecting');
    this.connect();
  }

  /** The last output seq handed on. */
  get seq(): number {
    return this.lastSeq;
  }

  private connect(): void {
    const base = this.client.conn.url.replace(/^http/, 'ws');
    const url = `${base}/api/v1/tasks/${this.taskId}/stream?from=${this.lastSeq + 1}&sender=${this.sender}`;
    const ws = new WebSocket(url, { headers: this.client.headers(), handshakeTimeout: 15_000 });
    this.ws = ws;
    ws.on('open', () => {
      this.retry = FIRST_RETRY_MS;
      this.lastHeard = Date.now();
      this.on.connection('open');
      if (this.size) ws.send(JSON.stringify({ type: 'resize', ...this.size }));
      for (const m of this.unacked) ws.send(m.frame);
      this.pingTimer = setInterval(() => this.checkAlive(), PING_MS);
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (this.closed) return;
      this.lastHeard = Date.now();
      if (!isBinary) return this.onJson(JSON.parse(data.toString('utf8')));
      const seq = Number(data.readBigUInt64BE(0));
      if (seq <= this.lastSeq) return; // already handed on
      this.lastSeq = seq;
      this.on.output(data.subarray(8), seq);
    });
    // The upgrade was answered with an error (the REST call before it passed, so this is rare:
    // a task deleted or a token changed meanwhile).
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => {
        req.destroy();
        const status = res.statusCode ?? 0;
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          // A refused upgrade comes without the API's JSON: say what the status means.
          const code = status === 404 ? 'not_found' : 'refused';
          body = { error: { code, message: `Lia refused the stream of ${this.taskId} (HTTP ${status})` } };
        }
        if (status >= 400 && status < 500) {
          this.stop();
          this.on.fatal(apiError(this.client.conn, status, body, { route: 'stream', taskId: this.taskId }));
        } else this.lost(ws, `HTTP ${status}`);
      });
    });
    let why: string | undefined;
    ws.on('error', (err) => {
      why = networkCode(err) ?? err.message;
    });
    ws.on('close', () => this.lost(ws, why));
  }

  private onJson(m: StreamServerMessage): void {
    if (m.type === 'state') this.on.state(m);
    else if (m.type === 'truncated') this.on.truncated(m.message);
    else if (m.type === 'error') this.on.error(m.message);
    else if (m.type === 'ack') {
      while (this.unacked.length && this.unacked[0]!.seq <= m.seq) this.unacked.shift();
      if (!this.unacked.length) for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  /** Sends a ping, or gives up on a socket that has said nothing for too long. */
  private checkAlive(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENT_MS) {
      ws.terminate();
      this.lost(ws, 'the connection went silent'); // don't wait for a handshake a dead peer never answers
    } else ws.send(JSON.stringify({ type: 'ping' }));
  }

  private lost(ws: WebSocket, why?: string): void {
    if (ws !== this.ws) return; // an old socket's late close
    ws.removeAllListeners();
    ws.on('error', () => {}); // a late error of a socket we have let go of
    this.ws = undefined;
    clearInterval(this.pingTimer);
    if (this.closed) return;
    this.on.connection('reconnecting', why);
    // Jitter keeps many clients from reconnecting in lockstep after a server restart.
    this.retryTimer = setTimeout(() => this.connect(), this.retry * (0.75 + Math.random() / 2));
    this.retry = Math.min(this.retry * 2, MAX_RETRY_MS);
  }

  input(data: string): void {
    for (let i = 0; i < data.length; ) {
      let end = Math.min(i + INPUT_PIECE, data.length);
      // Never split a surrogate pair: each piece must be valid UTF-16 on its own.
      if (end < data.length && /[\ud800-\udbff]/.test(data[end - 1]!)) end--;
      const seq = ++this.inputSeq;
      const frame = JSON.stringify({ type: 'input', data: data.slice(i, end), seq });
      this.unacked.push({ seq, frame });
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(frame);
      i = end;
    }
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Resolves once every input sent so far is acknowledged (stored), or after `timeoutMs`. */
  async inputStored(timeoutMs: number): Promise<boolean> {
    if (!this.unacked.length) return true;
    let timer: NodeJS.Timeout | undefined;
    const stored = await Promise.race([
      new Promise<boolean>((resolve) => this.drained.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return stored;
  }

  close(): void {
    this.stop();
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    ws.removeAllListeners();
    ws.on('error', () => {});
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close();
  }

  private stop(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
  }
}
