/**
 * A task's terminal stream for the command line: Node's `ws` around the protocol's client half
 * (api/stream-session.ts, shared with the web page), which numbers output and input so each
 * arrives exactly once across reconnects.
 *
 * Unlike the page it authenticates with headers (the service token never goes in a URL), and it
 * gives up at once when the server refuses the upgrade for good (401, 403, 404: retrying won't
 * help), where a page would be reloaded.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { type Connection, PING_MS, StreamSession, type StreamState } from '../api/stream-session.js';
import type { StreamServerMessage } from '../api/types.js';
import type { LiaClient } from './client.js';
import { apiError, type CliError, networkCode } from './errors.js';

export type { Connection, StreamState };

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

export class TaskStream {
  private ws?: WebSocket;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private readonly session: StreamSession;

  /** `from`: the first seq wanted (1 = the whole stored log). */
  constructor(
    private readonly client: LiaClient,
    private readonly taskId: string,
    private readonly on: StreamEvents,
    from = 1,
  ) {
    this.session = new StreamSession(randomBytes(16).toString('hex'), from);
    this.on.connection('connecting');
    this.connect();
  }

  /** The last output seq handed on. */
  get seq(): number {
    return this.session.seq;
  }

  private connect(): void {
    const base = this.client.conn.url.replace(/^http/, 'ws');
    const url = `${base}/api/v1/tasks/${this.taskId}/stream?${this.session.query()}`;
    const ws = new WebSocket(url, { headers: this.client.headers(), handshakeTimeout: 15_000 });
    this.ws = ws;
    ws.on('open', () => {
      this.on.connection('open');
      this.session.opened((f) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(f);
      });
      this.pingTimer = setInterval(() => {
        if (this.session.ping() === 'dead') {
          ws.terminate();
          this.lost(ws, 'the connection went silent'); // a dead peer never answers a closing handshake
        }
      }, PING_MS);
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (this.closed) return;
      if (!isBinary) return this.onJson(JSON.parse(data.toString('utf8')));
      const seq = Number(data.readBigUInt64BE(0));
      if (this.session.chunk(seq)) this.on.output(data.subarray(8), seq);
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
    this.session.message(m);
    if (m.type === 'state') this.on.state(m);
    else if (m.type === 'truncated') this.on.truncated(m.message);
    else if (m.type === 'error') this.on.error(m.message);
  }

  private lost(ws: WebSocket, why?: string): void {
    if (ws !== this.ws) return; // an old socket's late close
    ws.removeAllListeners();
    ws.on('error', () => {}); // a late error of a socket we have let go of
    this.ws = undefined;
    clearInterval(this.pingTimer);
    const wait = this.session.lost();
    if (this.closed) return;
    this.on.connection('reconnecting', why);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  /** Sends input (kept until stored, sent again after a reconnect). */
  input(data: string): void {
    this.session.input(data);
  }

  resize(cols: number, rows: number): void {
    this.session.resize(cols, rows);
  }

  /** Resolves once every input sent so far is acknowledged (stored), or false after `timeoutMs`. */
  inputStored(timeoutMs: number): Promise<boolean> {
    return this.session.inputStored(timeoutMs);
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
