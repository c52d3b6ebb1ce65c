/**
 * The task's terminal stream (protocol: api/routes/stream.ts). Output chunks are numbered by seq
 * and each is shown exactly once: when the socket drops, it reconnects with backoff from the last
 * seq it has, so nothing is missed or doubled. Input is numbered too: each keystroke is kept
 * until the server acknowledges it as stored, and sent again after a reconnect (the server
 * stores a number only once), so keystrokes typed offline, or in flight when a connection died,
 * arrive exactly once. The terminal's size is sent on every connect, so the PTY follows a window
 * resized while offline.
 */
import { type StreamServerMessage, token } from './api';

export type StreamState = Extract<StreamServerMessage, { type: 'state' }>;

export type Connection = 'connecting' | 'open' | 'reconnecting';

export interface StreamEvents {
  output(bytes: Uint8Array, seq: number): void;
  state(s: StreamState): void;
  connection(c: Connection): void;
  /** Output before this seq was dropped by the retention limit. */
  truncated(message: string): void;
  error(message: string): void;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
/** A socket silent this long is presumed dead (a half-open TCP connection never closes by itself). */
const SILENT_MS = 45_000;
const PING_MS = 15_000;
/** Characters per input frame: even escaped as JSON (6 bytes each at worst) it stays under 64 KiB. */
const INPUT_PIECE = 8192;

export class TaskStream {
  private ws?: WebSocket;
  private lastSeq = 0;
  private closed = false;
  private retry = FIRST_RETRY_MS;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private pingTimer?: ReturnType<typeof setInterval>;
  private lastHeard = 0;
  /** Input not yet acknowledged, oldest first: sent again, in order, on every connect. */
  private unacked: { seq: number; frame: string }[] = [];
  private inputSeq = 0;
  /** Identifies this page's input to the server across reconnects. */
  private readonly sender = randomId();
  private size?: { cols: number; rows: number };

  constructor(
    private readonly taskId: string,
    private readonly on: StreamEvents,
  ) {
    this.on.connection('connecting');
    this.connect();
  }

  private connect(): void {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${proto}://${location.host}/api/v1/tasks/${this.taskId}/stream?from=${this.lastSeq + 1}&sender=${this.sender}&token=${encodeURIComponent(token() ?? '')}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.retry = FIRST_RETRY_MS;
      this.lastHeard = Date.now();
      this.on.connection('open');
      if (this.size) ws.send(JSON.stringify({ type: 'resize', ...this.size }));
      for (const m of this.unacked) ws.send(m.frame);
      this.pingTimer = setInterval(() => this.checkAlive(), PING_MS);
    };
    ws.onmessage = (e) => {
      if (this.closed) return;
      this.lastHeard = Date.now();
      if (typeof e.data === 'string') return this.onJson(JSON.parse(e.data));
      const seq = Number(new DataView(e.data as ArrayBuffer).getBigUint64(0));
      if (seq <= this.lastSeq) return; // already shown
      this.lastSeq = seq;
      this.on.output(new Uint8Array(e.data as ArrayBuffer, 8), seq);
    };
    ws.onclose = (e) => {
      // 4001: the link expired, or a newer link or a stop revoked it: reconnecting cannot help.
      if (e.code === 4001) {
        this.closed = true;
        this.on.error(e.reason || 'this link no longer opens the task; ask for a new one (/status)');
      }
      this.lost(ws);
    };
  }

  private onJson(m: StreamServerMessage): void {
    if (m.type === 'state') this.on.state(m);
    else if (m.type === 'truncated') this.on.truncated(m.message);
    else if (m.type === 'error') this.on.error(m.message);
    else if (m.type === 'ack') {
      while (this.unacked.length && this.unacked[0]!.seq <= m.seq) this.unacked.shift();
    }
  }

  /** Sends a ping, or gives up on a socket that has said nothing for too long. */
  private checkAlive(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENT_MS) {
      ws.close();
      this.lost(ws); // don't wait for a closing handshake that a dead peer never answers
    } else ws.send(JSON.stringify({ type: 'ping' }));
  }

  private lost(ws: WebSocket): void {
    if (ws !== this.ws) return; // an old socket's late close
    ws.onclose = ws.onmessage = ws.onopen = null;
    this.ws = undefined;
    clearInterval(this.pingTimer);
    if (this.closed) return;
    this.on.connection('reconnecting');
    // Jitter keeps many tabs from reconnecting in lockstep after a server restart.
    this.retryTimer = setTimeout(() => this.connect(), this.retry * (0.75 + Math.random() / 2));
    this.retry = Math.min(this.retry * 2, MAX_RETRY_MS);
  }

  /** Sends typed or pasted input, in pieces well under the server's frame limit (128 KiB). */
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
