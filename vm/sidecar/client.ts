/**
 * The host's end of the sidecar protocol: one connection over whatever stream the driver gives
 * (Unix socket, vsock, virtio-serial socket). Opens with SYNC + hello and waits for the answer.
 */
import type { Duplex } from 'node:stream';
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  type HostMessage,
  MAX_GUEST_BODY_BYTES,
  PROTOCOL_VERSION,
  type SidecarMessage,
  SYNC,
} from '../protocol.js';
import { sidecarMessageSchema } from './messages.js';

type Hello = Extract<SidecarMessage, { type: 'hello' }>;

/** The guest sent something the protocol does not allow: it is broken or hostile. */
export class GuestProtocolError extends Error {
  constructor(message: string) {
    super(`the guest broke the sidecar protocol: ${message}`);
    this.name = 'GuestProtocolError';
  }
}

export class SidecarConnection {
  private readonly frameListeners = new Set<(f: Frame<SidecarMessage>) => void>();
  private readonly closeListeners = new Set<() => void>();
  private closed = false;
  hello!: Hello;
  /** Why the session was dropped, when the guest broke the protocol. */
  violation?: GuestProtocolError;

  private constructor(private readonly stream: Duplex) {
    const decoder = new FrameDecoder<unknown>(undefined, MAX_GUEST_BODY_BYTES);
    stream.on('data', (chunk: Buffer) => {
      if (this.violation) return;
      try {
        for (const f of decoder.push(chunk)) {
          const m = sidecarMessageSchema.safeParse(f.header);
          if (!m.success)
            throw new Error(`${m.error.issues[0]?.path.join('.')}: ${m.error.issues[0]?.message}`);
          const frame: Frame<SidecarMessage> = { header: m.data, body: f.body };
          for (const l of this.frameListeners) l(frame);
        }
      } catch (err) {
        this.violation = new GuestProtocolError((err as Error).message.slice(0, 300));
        stream.destroy();
      }
    });
    const end = () => {
      if (this.closed) return;
      this.closed = true;
      for (const l of this.closeListeners) l();
    };
    stream.on('close', end);
    stream.on('end', end);
    stream.on('error', end);
  }

  /** Says hello and resolves with the sidecar's hello; rejects if none comes within `timeoutMs`. */
  static async open(stream: Duplex, timeoutMs: number): Promise<SidecarConnection> {
    const c = new SidecarConnection(stream);
    stream.write(SYNC);
    c.send({ type: 'hello', version: PROTOCOL_VERSION });
    try {
      c.hello = (await c.waitFor((m) => m.type === 'hello', timeoutMs)) as Hello;
    } catch (err) {
      c.close();
      throw err;
    }
    if (c.hello.version !== PROTOCOL_VERSION) {
      c.close();
      throw new Error(
        `the sidecar speaks protocol ${c.hello.version}, this worker ${PROTOCOL_VERSION}: rebuild the guest image`,
      );
    }
    return c;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a frame; false when the channel's buffer is full (wait for `drained()` before more). */
  send(m: HostMessage, body?: Uint8Array): boolean {
    if (this.closed || this.stream.destroyed) return false;
    return this.stream.write(encodeFrame(m, body));
  }

  /** Resolves when what was sent has drained into the channel (or the connection is gone). */
  drained(): Promise<void> {
    if (this.closed || !this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        offClose();
        resolve();
      };
      this.stream.once('drain', done);
      const offClose = this.onClose(done);
    });
  }

  /** Stops reading from the guest (the host cannot store as fast as it sends), and goes on. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  onFrame(cb: (f: Frame<SidecarMessage>) => void): () => void {
    this.frameListeners.add(cb);
    return () => this.frameListeners.delete(cb);
  }

  onClose(cb: () => void): () => void {
    if (this.closed) queueMicrotask(cb);
    else this.closeListeners.add(cb);
    return () => this.closeListeners.delete(cb);
  }

  /** The first message matching `pred`; rejects on timeout or when the connection ends first. */
  async waitFor(pred: (m: SidecarMessage) => boolean, timeoutMs: number): Promise<SidecarMessage> {
    return (await this.waitForFrame(pred, timeoutMs)).header;
  }

  /** The first frame whose message matches `pred`, with its body. */
  waitForFrame(pred: (m: SidecarMessage) => boolean, timeoutMs: number): Promise<Frame<SidecarMessage>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`the sidecar did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const offFrame = this.onFrame((f) => {
        if (!pred(f.header)) return;
        cleanup();
        resolve(f);
      });
      const offClose = this.onClose(() => {
        cleanup();
        reject(this.violation ?? new Error('the sidecar closed the connection'));
      });
      const cleanup = () => {
        clearTimeout(timer);
        offFrame();
        offClose();
      };
    });
  }

  close(): void {
    this.stream.destroy();
  }
}
