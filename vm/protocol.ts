/**
 * The sidecar protocol: length-framed messages between the host worker and the in-guest
 * agent sidecar, over any byte stream (Unix socket, vsock, virtio-serial).
 *
 * Frame: u32 BE header length | u32 BE body length | header (JSON, UTF-8) | body (raw bytes).
 * The body carries terminal bytes (stdin, output) and file contents without base64.
 *
 * A connection starts with SYNC from each side. Over a virtio-serial port the guest cannot see a
 * host disconnect, so a frame cut in half by a dying worker may still sit in the pipe; the
 * reader drops everything up to the latest SYNC and starts decoding afresh there.
 *
 * Output is numbered by the sidecar (`seq`, from 1, never reused). The sidecar keeps what the
 * host has not acknowledged, and a host that (re)attaches says which seq it wants next: that is
 * what makes a worker restart lose and double nothing.
 */

export const PROTOCOL_VERSION = 1;
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** 16 random bytes, written as hex so that this source file never contains them verbatim. */
export const SYNC = Buffer.from('9f3ac1d07be24e5583a61c0fd2b7e948', 'hex');

/** Sidecar → host. */
export type SidecarMessage =
  | {
      type: 'hello';
      version: number;
      /** idle: no agent started yet; running: agent alive; exited: agent ended (see `exit`). */
      agent: 'idle' | 'running' | 'exited';
      /** The seq the next output chunk will get. */
      nextSeq: number;
      pid?: number;
    }
  | { type: 'output'; seq: number } // body: bytes
  | { type: 'exit'; code: number | null; signal: string | null; message?: string }
  | { type: 'pong'; id: number }
  | { type: 'started'; pid: number }
  | { type: 'error'; message: string };

/** Host → sidecar. */
export type HostMessage =
  | { type: 'hello'; version: number }
  /** Replay buffered output from `fromSeq` on, then stream live. */
  | { type: 'attach'; fromSeq: number }
  /** Everything up to and including `seq` is stored: the sidecar may forget it. */
  | { type: 'ack'; seq: number }
  | {
      type: 'start';
      command: string;
      args: string[];
      env: Record<string, string>;
      /** Default: the sidecar's working directory, where `file` messages land. */
      cwd?: string;
      cols: number;
      rows: number;
    }
  /** A file for the agent's working directory; body: contents. Sent before `start`. */
  | { type: 'file'; name: string; mode?: number }
  | { type: 'stdin' } // body: bytes
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'ping'; id: number };

export type AnyMessage = SidecarMessage | HostMessage;

export function encodeFrame(header: AnyMessage, body?: Uint8Array): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const b = body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : Buffer.alloc(0);
  if (h.length > MAX_HEADER_BYTES) throw new Error(`frame header too large (${h.length} bytes)`);
  if (b.length > MAX_BODY_BYTES) throw new Error(`frame body too large (${b.length} bytes)`);
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32BE(h.length, 0);
  prefix.writeUInt32BE(b.length, 4);
  return Buffer.concat([prefix, h, b]);
}

export interface Frame<M> {
  header: M;
  body: Buffer;
}

/**
 * Incremental decoder: feed it whatever the stream delivers, get whole frames back.
 * Throws on a frame that breaks the limits (the connection should then be dropped).
 */
export class FrameDecoder<M = AnyMessage> {
  private buf: Buffer = Buffer.alloc(0);
  private synced = false;

  /**
   * @param onSync called when a SYNC starts a new session (frames before it are discarded).
   */
  constructor(private readonly onSync?: () => void) {}

  push(chunk: Buffer): Frame<M>[] {
    const carried = this.buf.length;
    this.buf = carried ? Buffer.concat([this.buf, chunk]) : chunk;
    // The latest SYNC wins; look only where a new one can be (the new bytes and a SYNC-sized overlap).
    let at = -1;
    for (
      let i = this.buf.indexOf(SYNC, Math.max(0, carried - SYNC.length + 1));
      i >= 0;
      i = this.buf.indexOf(SYNC, i + 1)
    ) {
      at = i;
    }
    if (at >= 0) {
      this.buf = this.buf.subarray(at + SYNC.length);
      this.synced = true;
      this.onSync?.();
    }
    const frames: Frame<M>[] = [];
    if (!this.synced) {
      // Nothing counts before the first SYNC; keep only a possible SYNC prefix.
      this.buf = this.buf.subarray(Math.max(0, this.buf.length - SYNC.length + 1));
      return frames;
    }
    while (this.buf.length >= 8) {
      const hl = this.buf.readUInt32BE(0);
      const bl = this.buf.readUInt32BE(4);
      if (hl > MAX_HEADER_BYTES || bl > MAX_BODY_BYTES) {
        throw new Error(`bad frame: header ${hl} bytes, body ${bl} bytes`);
      }
      if (this.buf.length < 8 + hl + bl) break;
      const header = JSON.parse(this.buf.subarray(8, 8 + hl).toString('utf8')) as M;
      if (
        typeof header !== 'object' ||
        header === null ||
        typeof (header as { type?: unknown }).type !== 'string'
      ) {
        throw new Error('bad frame: header has no type');
      }
      const body = Buffer.from(this.buf.subarray(8 + hl, 8 + hl + bl));
      frames.push({ header, body });
      this.buf = this.buf.subarray(8 + hl + bl);
    }
    return frames;
  }
}
