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
/** Host → guest bodies carry the task's files (10 MiB at most each). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Guest → host bodies are output chunks (256 KiB at most): the host takes no more than this. */
export const MAX_GUEST_BODY_BYTES = 512 * 1024;

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
  | { type: 'error'; message: string }
  /**
   * The agent's permission hook asks before a tool use (body: the tool's input as JSON, shrunk).
   * Sent again on every attach while it waits: the host takes each id once.
   */
  | { type: 'question'; id: string; tool: string; toolUseId?: string }
  /** The hook stopped waiting before an answer came (the agent was interrupted). */
  | { type: 'question-gone'; id: string }
  /** An answer reached the sidecar (or was for a question it no longer has): do not send it again. */
  | { type: 'answer-ack'; id: string }
  /** A follow-up turn is in the sidecar's queue (or was before): do not send it again. */
  | { type: 'turn-ack'; n: number }
  /**
   * The answer to a `git` push: whether it worked, and what git said (its tail); `empty`: the
   * branch has no commit beyond its base, so nothing was pushed.
   */
  | { type: 'git-result'; id: number; ok: boolean; output: string; empty?: boolean }
  /**
   * The answer to a `git` `diff` request: the working tree against the task's base (body: JSON,
   * common/diff.ts's GuestDiff, when ok), or what failed.
   */
  | { type: 'diff-result'; id: number; ok: boolean; error?: string };

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
      /**
       * The VM's own identity, set before the agent starts (a sidecar started with
       * `--apply-identity`, i.e. in a VM, applies it; the local driver's ignores it). A VM
       * restored from a template is a copy of it: none of this may come from the template.
       */
      identity?: GuestIdentity;
    }
  /** A file for the agent's working directory; body: contents. Sent before `start`. */
  | { type: 'file'; name: string; mode?: number }
  | { type: 'stdin' } // body: bytes
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'ping'; id: number }
  /** The owner's answer to a question; `message` is what the agent is told, `note` what the terminal shows. */
  | { type: 'answer'; id: string; decision: 'allow' | 'deny'; message: string; note: string }
  /** A follow-up turn for the headless conversation, numbered per task from 2; body: its text. */
  | { type: 'turn'; n: number }
  /**
   * The task's repository (issue 20), sent before `start`: the sidecar sets git's URL rewrite
   * (`git config --global <rewrite.key> <rewrite.value>`), clones `url` into `dir` and checks out
   * `branch`, as the agent's user, showing git's progress in the terminal; the agent then starts
   * in `dir`. A clone that fails is said in the terminal and the agent starts anyway.
   */
  | {
      type: 'repo';
      url: string;
      /** The base to clone; undefined: the repository's default branch. */
      base?: string;
      /** The task's branch, created from the base. */
      branch: string;
      /** A folder name in the working directory. */
      dir: string;
      rewrite: { key: string; value: string };
    }
  /**
   * Commits what the agent left uncommitted (author "Lia agent") and pushes HEAD to `branch`
   * through the proxy; answered by `git-result` with the same id.
   */
  | { type: 'git'; id: number; op: 'push'; branch: string; message: string }
  /**
   * On every attach to an agent that already runs (after a restore, a worker restart): the host's
   * clock and fresh randomness. A restored snapshot wakes with its clock stopped at the suspend
   * and its random state as it was when written — a second restore of it would repeat it.
   */
  | { type: 'refresh'; seed: string; timeMs: number }
  /** The working tree (uncommitted and untracked files too) against the base; answered by `diff-result`. */
  | { type: 'git'; id: number; op: 'diff' };

export interface GuestIdentity {
  hostname: string;
  /** 32 hex digits (/etc/machine-id). */
  machineId: string;
  /** Hex: mixed into the kernel's pool, credited, and the CRNG reseeded from it. */
  seed: string;
  /** The host's clock, epoch ms, when the message was made. */
  timeMs: number;
}

export type AnyMessage = SidecarMessage | HostMessage;

/** Any header with a `type` (the sidecar's messages, and the egress streams' of vm/channel/mux.ts). */
export function encodeFrame(
  header: AnyMessage | { type: string; [k: string]: unknown },
  body?: Uint8Array,
): Buffer {
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
 * Incremental decoder: feed it whatever the stream delivers, get whole frames back. Linear in
 * what it is fed: pieces of a frame are kept as they came and joined once, when the frame is
 * whole. Throws on a frame that breaks the limits (the connection should then be dropped):
 * a peer cannot make it hold more than one frame's worth of bytes.
 */
export class FrameDecoder<M = AnyMessage> {
  private parts: Buffer[] = [];
  private size = 0;
  private synced = false;
  /** The last bytes seen, for a SYNC that arrives split across two pieces. */
  private tail: Buffer = Buffer.alloc(0);

  /**
   * @param onSync called when a SYNC starts a new session (frames before it are discarded).
   * @param maxBody the largest body accepted (the host takes less from a guest than it sends).
   * @param maxHeader the largest header accepted.
   */
  constructor(
    private readonly onSync?: () => void,
    private readonly maxBody = MAX_BODY_BYTES,
    private readonly maxHeader = MAX_HEADER_BYTES,
  ) {}

  push(chunk: Buffer): Frame<M>[] {
    // The latest SYNC wins; look only where a new one can be (the new bytes and a SYNC-sized overlap).
    const probe = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const at = probe.lastIndexOf(SYNC);
    let fresh = chunk;
    if (at >= 0) {
      this.parts = [];
      this.size = 0;
      this.synced = true;
      fresh = probe.subarray(at + SYNC.length);
      this.onSync?.();
    }
    const seen = at >= 0 ? fresh : probe;
    this.tail = Buffer.from(seen.subarray(Math.max(0, seen.length - (SYNC.length - 1))));
    // Nothing counts before the first SYNC.
    if (!this.synced) return [];
    if (fresh.length) {
      this.parts.push(fresh);
      this.size += fresh.length;
    }
    const frames: Frame<M>[] = [];
    while (this.size >= 8) {
      if (this.parts[0]!.length < 8) this.join();
      const head = this.parts[0]!;
      const hl = head.readUInt32BE(0);
      const bl = head.readUInt32BE(4);
      if (hl > this.maxHeader || bl > this.maxBody) {
        throw new Error(
          `bad frame: header ${hl} bytes, body ${bl} bytes (at most ${this.maxHeader} and ${this.maxBody})`,
        );
      }
      const need = 8 + hl + bl;
      if (this.size < need) break;
      const buf = this.join();
      let header: M;
      try {
        header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as M;
      } catch {
        throw new Error('bad frame: the header is not JSON');
      }
      if (
        typeof header !== 'object' ||
        header === null ||
        Array.isArray(header) ||
        typeof (header as { type?: unknown }).type !== 'string'
      ) {
        throw new Error('bad frame: header has no type');
      }
      frames.push({ header, body: Buffer.from(buf.subarray(8 + hl, need)) });
      const rest = buf.subarray(need);
      this.parts = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return frames;
  }

  /** The pieces held, as one buffer (once per whole frame, or to read a split prefix). */
  private join(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.size)];
    return this.parts[0] ?? Buffer.alloc(0);
  }
}
