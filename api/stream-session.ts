/**
 * The client half of the stream protocol (api/routes/stream.ts), shared by the web page
 * (browser WebSocket) and the command line (Node's `ws`); each keeps its own socket and timers.
 *
 * Output chunks are numbered by seq and each is handed on exactly once: after a drop the client
 * reconnects from the last seq it has. Input is numbered under one random sender id for the
 * client's life: each piece is kept until the server acknowledges it as stored, and sent again,
 * in order, on every connect (the server stores a number only once), so input typed offline or
 * in flight when a connection died arrives exactly once. The terminal's size is sent on every
 * connect, so the PTY follows a window resized while offline.
 *
 * Browser-safe: no Node import.
 */
import type { StreamServerMessage } from './types.js';

export type StreamState = Extract<StreamServerMessage, { type: 'state' }>;
export type Connection = 'connecting' | 'open' | 'reconnecting';

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
/** A socket silent this long is presumed dead (a half-open TCP connection never closes by itself). */
const SILENT_MS = 45_000;
/** How often a client pings (and checks SILENT_MS). */
export const PING_MS = 15_000;
/**
 * UTF-16 units per input frame: within the server's 64 Ki-unit field, and even escaped as JSON
 * (6 bytes a unit at worst) within its 128 KiB frame limit.
 */
const INPUT_PIECE = 16 * 1024;
/** Close code of a link that expired or was revoked: reconnecting cannot help. */
export const LINK_REVOKED = 4001;

type Send = (frame: string) => void;

export class StreamSession {
  private lastSeq: number;
  private inputSeq = 0;
  private unacked: { seq: number; frame: string }[] = [];
  private size?: { cols: number; rows: number };
  private retry = FIRST_RETRY_MS;
  private lastHeard = 0;
  private drained: (() => void)[] = [];
  /** Where frames go while a socket is open; undefined while offline (input is kept). */
  private send?: Send;

  /** `from`: the first seq wanted (1 = the whole stored log). */
  constructor(
    readonly sender: string,
    from = 1,
  ) {
    this.lastSeq = from - 1;
  }

  /** The last output seq handed on. */
  get seq(): number {
    return this.lastSeq;
  }

  /** The query string of the next connect: from where, and who sends. */
  query(): string {
    return `from=${this.lastSeq + 1}&sender=${this.sender}`;
  }

  /** A socket opened: what was resized or typed meanwhile goes out first. */
  opened(send: Send): void {
    this.send = send;
    this.retry = FIRST_RETRY_MS;
    this.lastHeard = Date.now();
    if (this.size) send(JSON.stringify({ type: 'resize', ...this.size }));
    for (const m of this.unacked) send(m.frame);
  }

  /** The socket is gone; returns how long to wait before the next connect. */
  lost(): number {
    this.send = undefined;
    // Jitter keeps many clients from reconnecting in lockstep after a server restart.
    const wait = this.retry * (0.75 + Math.random() / 2);
    this.retry = Math.min(this.retry * 2, MAX_RETRY_MS);
    return wait;
  }

  /** A binary frame's seq arrived: true if it is new (hand it on), false if already handed on. */
  chunk(seq: number): boolean {
    this.lastHeard = Date.now();
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return true;
  }

  /** A text frame arrived; acknowledgements are settled here. */
  message(m: StreamServerMessage): void {
    this.lastHeard = Date.now();
    if (m.type !== 'ack') return;
    while (this.unacked.length && this.unacked[0]!.seq <= m.seq) this.unacked.shift();
    if (!this.unacked.length) for (const resolve of this.drained.splice(0)) resolve();
  }

  /** Ping time: 'dead' if the socket has said nothing for too long, else a ping was sent. */
  ping(): 'dead' | 'pinged' {
    if (Date.now() - this.lastHeard > SILENT_MS) return 'dead';
    this.send?.(JSON.stringify({ type: 'ping' }));
    return 'pinged';
  }

  /** Typed or pasted input, numbered, in pieces within the server's limits. */
  input(data: string): void {
    for (let i = 0; i < data.length; ) {
      let end = Math.min(i + INPUT_PIECE, data.length);
      // Never split a surrogate pair: each piece must be valid UTF-16 on its own.
      if (end < data.length && /[\ud800-\udbff]/.test(data[end - 1]!)) end--;
      const seq = ++this.inputSeq;
      const frame = JSON.stringify({ type: 'input', data: data.slice(i, end), seq });
      this.unacked.push({ seq, frame });
      this.send?.(frame);
      i = end;
    }
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.send?.(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Resolves once every input sent so far is acknowledged (stored), or false after `timeoutMs`. */
  async inputStored(timeoutMs: number): Promise<boolean> {
    if (!this.unacked.length) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stored = await Promise.race([
      new Promise<boolean>((resolve) => this.drained.push(() => resolve(true))),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return stored;
  }
}
