/**
 * The task's terminal stream on the page: a browser WebSocket around the protocol's client half
 * (api/stream-session.ts), which numbers output and input so each arrives exactly once across
 * reconnects.
 */
import {
  type Connection,
  LINK_REVOKED,
  PING_MS,
  StreamSession,
  type StreamState,
} from '../../api/stream-session';
import { type StreamServerMessage, token } from './api';

export type { Connection, StreamState };

export interface StreamEvents {
  output(bytes: Uint8Array, seq: number): void;
  state(s: StreamState): void;
  connection(c: Connection): void;
  /** Output before this seq was dropped by the retention limit. */
  truncated(message: string): void;
  error(message: string): void;
}

export class TaskStream {
  private ws?: WebSocket;
  private closed = false;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private pingTimer?: ReturnType<typeof setInterval>;
  private readonly session = new StreamSession(randomId());

  constructor(
    private readonly taskId: string,
    private readonly on: StreamEvents,
  ) {
    this.on.connection('connecting');
    this.connect();
  }

  private connect(): void {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${proto}://${location.host}/api/v1/tasks/${this.taskId}/stream?${this.session.query()}&token=${encodeURIComponent(token() ?? '')}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.on.connection('open');
      this.session.opened((f) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(f);
      });
      this.pingTimer = setInterval(() => {
        if (this.session.ping() === 'dead') {
          ws.close();
          this.lost(ws); // don't wait for a closing handshake that a dead peer never answers
        }
      }, PING_MS);
    };
    ws.onmessage = (e) => {
      if (this.closed) return;
      if (typeof e.data === 'string') return this.onJson(JSON.parse(e.data));
      const seq = Number(new DataView(e.data as ArrayBuffer).getBigUint64(0));
      if (this.session.chunk(seq)) this.on.output(new Uint8Array(e.data as ArrayBuffer, 8), seq);
    };
    ws.onclose = (e) => {
      if (e.code === LINK_REVOKED) {
        this.closed = true;
        this.on.error(e.reason || 'this link no longer opens the task; ask for a new one (/status)');
      }
      this.lost(ws);
    };
  }

  private onJson(m: StreamServerMessage): void {
    this.session.message(m);
    if (m.type === 'state') this.on.state(m);
    else if (m.type === 'truncated') this.on.truncated(m.message);
    else if (m.type === 'error') this.on.error(m.message);
  }

  private lost(ws: WebSocket): void {
    if (ws !== this.ws) return; // an old socket's late close
    ws.onclose = ws.onmessage = ws.onopen = null;
    this.ws = undefined;
    clearInterval(this.pingTimer);
    const wait = this.session.lost();
    if (this.closed) return;
    this.on.connection('reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  /** Sends typed or pasted input (kept until stored, sent again after a reconnect). */
  input(data: string): void {
    this.session.input(data);
  }

  resize(cols: number, rows: number): void {
    this.session.resize(cols, rows);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    // Closing a socket still connecting aborts it, which proxies (Vite's in development) log as a
    // reset: let it open, then close it cleanly.
    if (ws?.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close();
    else ws?.close();
  }
}

/** Random hex; crypto.randomUUID needs a secure context, which a plain-HTTP deployment is not. */
function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
