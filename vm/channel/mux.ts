/**
 * Streams over one byte channel: how a guest with no network card reaches the host's egress
 * proxy. Inside the guest the sidecar accepts TCP connections on 127.0.0.1:3128 and opens one
 * stream per connection over the VM's egress port (a virtio-serial port, or a vsock port); on
 * the host each stream is handed to the egress proxy as if it were a TCP connection. Both ends
 * run this module (the guest's copy is bundled into the sidecar).
 *
 * Frames are the sidecar protocol's (vm/protocol.ts: length-prefixed JSON header + raw body),
 * and so are its SYNC-delimited sessions: over virtio-serial a guest cannot see a host go away,
 * and half a frame of a dead worker's session may still be in the port. The host opens a
 * session with SYNC + hello; the guest drops every stream of the session before and answers
 * SYNC + hello. Only the guest opens streams.
 *
 * Flow control, per stream and direction, by credit: a side may send on a stream only the bytes
 * the other side has granted — `window` from its hello up front, then `credit` frames as the
 * receiver's reader takes the data. A receiver so holds at most one window per stream (plus its
 * reader's high-water mark), and a peer may have at most `maxStreams` streams open: a guest
 * cannot make the host buffer without bound. A guest that sends past its grant, sends a body
 * over `maxData`, or sends a frame that is not one of these breaks the session: every stream is
 * reset and the session says why (`violation`).
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { encodeFrame, FrameDecoder, SYNC } from '../protocol.js';

export const MUX_VERSION = 1;
/** Bytes a receiver grants per stream up front (and at most holds unread). */
export const MUX_WINDOW = 256 * 1024;
/** The largest body of one data frame. */
export const MUX_MAX_DATA = 64 * 1024;
/** Streams a receiver accepts at once on one channel. */
export const MUX_MAX_STREAMS = 32;
/** Headers are a few dozen bytes; anything near this is not a mux frame. */
const MAX_HEADER = 512;
const MAX_ID = 2 ** 31 - 1;

export type MuxMessage =
  | { type: 'hello'; version: number; window: number; maxData: number; maxStreams: number }
  | { type: 'open'; id: number }
  /** body: the bytes */
  | { type: 'data'; id: number }
  | { type: 'credit'; id: number; bytes: number }
  /** The sender writes no more on this stream (its reader may still get data). */
  | { type: 'end'; id: number }
  | { type: 'reset'; id: number; reason?: string };

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** The header as one of the messages above, or why it is not one. */
export function parseMuxHeader(h: unknown): MuxMessage | string {
  if (typeof h !== 'object' || h === null) return 'header is not an object';
  const m = h as Record<string, unknown>;
  const keys = Object.keys(m).length;
  switch (m.type) {
    case 'hello':
      if (
        keys === 5 &&
        isInt(m.version, 0, 1000) &&
        isInt(m.window, 1024, 64 * 2 ** 20) &&
        isInt(m.maxData, 1024, 2 ** 20) &&
        isInt(m.maxStreams, 1, 4096)
      )
        return m as MuxMessage;
      return 'bad hello';
    case 'open':
    case 'data':
    case 'end':
      if (keys === 2 && isInt(m.id, 1, MAX_ID)) return m as MuxMessage;
      return `bad ${m.type}`;
    case 'credit':
      if (keys === 3 && isInt(m.id, 1, MAX_ID) && isInt(m.bytes, 1, 64 * 2 ** 20)) return m as MuxMessage;
      return 'bad credit';
    case 'reset':
      if (
        (keys === 2 || keys === 3) &&
        isInt(m.id, 1, MAX_ID) &&
        (m.reason === undefined || (typeof m.reason === 'string' && m.reason.length <= 200))
      )
        return m as MuxMessage;
      return 'bad reset';
    default:
      return `unknown frame type ${JSON.stringify(String(m.type).slice(0, 20))}`;
  }
}

export interface MuxLimits {
  window: number;
  maxData: number;
  maxStreams: number;
}

export interface MuxOptions extends Partial<MuxLimits> {
  role: 'host' | 'guest';
}

/**
 * One end of a channel. Events: `ready` (hellos exchanged; on a guest, again for each new host
 * session), `stream` (host: the guest opened one), `close` (the channel is gone; with the
 * violation, if that was why).
 */
export class MuxSession extends EventEmitter {
  readonly role: 'host' | 'guest';
  readonly limits: MuxLimits;
  private readonly decoder: FrameDecoder<unknown>;
  private readonly streams = new Map<number, MuxStream>();
  private peer?: MuxLimits;
  private nextId = 1;
  private closed = false;
  /** Set when the peer broke the protocol; the session is then closed. */
  violation?: string;

  constructor(
    readonly channel: Duplex,
    o: MuxOptions,
  ) {
    super();
    this.role = o.role;
    this.limits = {
      window: o.window ?? MUX_WINDOW,
      maxData: o.maxData ?? MUX_MAX_DATA,
      maxStreams: o.maxStreams ?? MUX_MAX_STREAMS,
    };
    this.decoder = new FrameDecoder<unknown>(() => this.onSync(), this.limits.maxData, MAX_HEADER);
    channel.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      let frames: ReturnType<FrameDecoder<unknown>['push']>;
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.violate((err as Error).message);
        return;
      }
      for (const f of frames) {
        if (this.closed) return;
        this.onFrame(f.header, f.body);
      }
    });
    channel.on('drain', () => this.emit('drain'));
    const gone = () => this.close();
    channel.on('close', gone);
    channel.on('end', gone);
    channel.on('error', gone);
    this.setMaxListeners(0);
    // The host starts a session; the guest answers each one (see onSync).
    if (this.role === 'host') this.sayHello();
  }

  get isReady(): boolean {
    return this.peer !== undefined && !this.closed;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** True while the channel's own buffer is full: data waits for `drain`. */
  get congested(): boolean {
    return this.channel.writableNeedDrain;
  }

  private sayHello(): void {
    this.channel.write(SYNC);
    this.send({ type: 'hello', version: MUX_VERSION, ...this.limits });
  }

  /** A new session from the other side: whatever ran before it is gone there. */
  private onSync(): void {
    this.peer = undefined;
    this.dropAll('the other side started a new session');
    if (this.role === 'guest') this.sayHello();
  }

  send(m: MuxMessage, body?: Buffer): void {
    if (this.closed || this.channel.destroyed) return;
    this.channel.write(encodeFrame(m, body));
  }

  private violate(reason: string): void {
    if (this.closed) return;
    this.violation = reason.slice(0, 300);
    this.close();
  }

  private onFrame(header: unknown, body: Buffer): void {
    const m = parseMuxHeader(header);
    if (typeof m === 'string') {
      this.violate(m);
      return;
    }
    if (m.type !== 'data' && body.length) {
      this.violate(`a ${m.type} frame with a body`);
      return;
    }
    if (m.type === 'hello') {
      if (m.version !== MUX_VERSION) {
        this.violate(`mux version ${m.version}, this side ${MUX_VERSION}`);
        return;
      }
      this.peer = { window: m.window, maxData: m.maxData, maxStreams: m.maxStreams };
      this.emit('ready');
      return;
    }
    if (!this.peer) {
      this.violate(`${m.type} before hello`);
      return;
    }
    const stream = this.streams.get(m.id);
    switch (m.type) {
      case 'open': {
        if (this.role !== 'host') {
          this.violate('the host opened a stream');
          return;
        }
        if (stream) {
          this.violate(`stream ${m.id} opened twice`);
          return;
        }
        if (this.streams.size >= this.limits.maxStreams) {
          this.send({ type: 'reset', id: m.id, reason: `at most ${this.limits.maxStreams} streams` });
          return;
        }
        const s = new MuxStream(this, m.id, this.peer.window, this.limits.window);
        this.streams.set(m.id, s);
        this.emit('stream', s);
        return;
      }
      case 'data':
        // A stream closed here may still get what was in flight: dropped, never buffered.
        if (!stream) return;
        if (body.length > stream.recvCredit) {
          this.violate(
            `stream ${m.id} sent ${body.length} bytes with ${stream.recvCredit} granted (window ${this.limits.window})`,
          );
          return;
        }
        stream.onData(body);
        return;
      case 'credit':
        if (!stream) return;
        if (stream.sendCredit + m.bytes > 64 * 2 ** 20) {
          this.violate(`stream ${m.id} granted more than 64 MiB`);
          return;
        }
        stream.addCredit(m.bytes);
        return;
      case 'end':
        stream?.onEnd();
        return;
      case 'reset':
        stream?.onReset(m.reason ?? 'reset');
        return;
    }
  }

  /** Guest: a new stream to the host (after `ready`). */
  open(): MuxStream {
    if (this.role !== 'guest') throw new Error('only the guest opens streams');
    if (!this.peer || this.closed) throw new Error('the egress channel is not connected');
    if (this.streams.size >= this.peer.maxStreams)
      throw new Error(`at most ${this.peer.maxStreams} connections at once`);
    let id = this.nextId;
    while (this.streams.has(id)) id = id >= MAX_ID ? 1 : id + 1;
    this.nextId = id >= MAX_ID ? 1 : id + 1;
    const s = new MuxStream(this, id, this.peer.window, this.limits.window);
    this.streams.set(id, s);
    this.send({ type: 'open', id });
    return s;
  }

  /** Called by a stream once it is destroyed. */
  forget(id: number, s: MuxStream): void {
    if (this.streams.get(id) === s) this.streams.delete(id);
  }

  private dropAll(reason: string): void {
    for (const s of [...this.streams.values()]) s.abandon(reason);
    this.streams.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peer = undefined;
    this.dropAll(this.violation ? `protocol violation: ${this.violation}` : 'the egress channel closed');
    this.channel.destroy();
    this.emit('close', this.violation ? new Error(this.violation) : undefined);
  }
}

/** One connection carried over a MuxSession; a Duplex like a socket. */
export class MuxStream extends Duplex {
  /** Bytes this side may still send. */
  sendCredit: number;
  /** Bytes the peer may still send (what we granted and have not received). */
  recvCredit: number;
  /** Received and not yet granted back. */
  private unacked = 0;
  private pending?: { chunk: Buffer; cb: (err?: Error | null) => void };
  private waitingDrain = false;
  private sentEnd = false;
  private gotEnd = false;
  /** The peer knows nothing of this stream any more (reset, or its session is gone). */
  private silent = false;

  constructor(
    private readonly session: MuxSession,
    readonly id: number,
    peerWindow: number,
    private readonly window: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.sendCredit = peerWindow;
    this.recvCredit = window;
  }

  onData(body: Buffer): void {
    this.recvCredit -= body.length;
    this.unacked += body.length;
    // Grant more only while our reader keeps up: a full buffer waits for _read.
    if (this.push(body)) this.grant(false);
  }

  private grant(force: boolean): void {
    if (this.silent || this.gotEnd || !this.unacked) return;
    if (!force && this.unacked < this.window / 4) return;
    this.session.send({ type: 'credit', id: this.id, bytes: this.unacked });
    this.recvCredit += this.unacked;
    this.unacked = 0;
  }

  override _read(): void {
    this.grant(true);
  }

  addCredit(bytes: number): void {
    this.sendCredit += bytes;
    this.flush();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, cb };
    this.flush();
  }

  private flush(): void {
    const maxData = this.session.limits.maxData;
    while (this.pending && this.sendCredit > 0 && !this.silent) {
      if (this.session.congested) {
        if (!this.waitingDrain) {
          this.waitingDrain = true;
          this.session.once('drain', () => {
            this.waitingDrain = false;
            this.flush();
          });
        }
        return;
      }
      const p = this.pending;
      const n = Math.min(p.chunk.length, this.sendCredit, maxData);
      this.session.send({ type: 'data', id: this.id }, p.chunk.subarray(0, n));
      this.sendCredit -= n;
      p.chunk = p.chunk.subarray(n);
      if (!p.chunk.length) {
        this.pending = undefined;
        p.cb();
      }
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.silent) this.session.send({ type: 'end', id: this.id });
    this.sentEnd = true;
    cb();
  }

  onEnd(): void {
    this.gotEnd = true;
    this.push(null);
  }

  onReset(reason: string): void {
    this.silent = true;
    this.destroy(new Error(`connection reset: ${reason}`));
  }

  /** The session is gone or restarted: end this stream here, tell the peer nothing. */
  abandon(reason: string): void {
    this.silent = true;
    this.destroy(new Error(reason));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.silent && !(this.sentEnd && this.gotEnd))
      this.session.send({ type: 'reset', id: this.id, reason: err?.message.slice(0, 200) ?? 'closed' });
    this.silent = true;
    const p = this.pending;
    this.pending = undefined;
    p?.cb(err ?? new Error('stream closed'));
    this.session.forget(this.id, this);
    cb(err);
  }
}
