/**
 * The egress attachment of one running VM: the host's end of its egress port. It keeps a mux
 * session (vm/channel/mux.ts) open to the guest's sidecar and hands every stream the guest
 * opens to the egress sink (the host's proxy) under the VM's task id. The same for every
 * driver: the port comes from the VM's guest channel.
 *
 * Lives in the host worker: a worker restart drops the session (the guest resets its open
 * connections, its clients retry) and the new worker attaches again (driver adopt()). While the
 * VM runs, a dropped session is re-opened, a little later each time; a guest that broke the
 * protocol waits longer.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/logger.js';
import type { EgressSink } from './egress-sink.js';
import { MuxSession } from './mux.js';

export interface EgressLinkOptions {
  taskId: string;
  /** A fresh stream to the guest's egress port. */
  connect: () => Promise<Duplex>;
  sink: EgressSink;
  logger?: Logger;
}

/** One attempt's wait for the guest's hello, and all attempts' at start. */
const HELLO_TIMEOUT_MS = 3_000;
const START_TIMEOUT_MS = 20_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const AFTER_VIOLATION_MS = 10_000;

export class EgressLink {
  private session?: MuxSession;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private timer?: NodeJS.Timeout;
  /** The last protocol violation of this VM's guest, if any. */
  lastViolation?: string;

  constructor(private readonly o: EgressLinkOptions) {}

  get connected(): boolean {
    return this.session?.isReady ?? false;
  }

  /**
   * Opens the session and resolves once the guest answered; keeps it open until stop(). A
   * hello can be lost while the guest's end changes hands (a virtio-serial port read by a
   * relay that restarts when the host goes): each attempt is a new connection.
   */
  async start(): Promise<void> {
    this.stopped = false;
    const deadline = Date.now() + START_TIMEOUT_MS;
    // The first hello is often lost (the guest's relay closing the port as the host arrives,
    // which discards what was in it): ask again soon, then less often — 0.5, 1, 2, 3, 3… s.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attach(Math.min(HELLO_TIMEOUT_MS, 500 * 2 ** attempt));
      } catch (err) {
        if (this.stopped || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async attach(helloTimeoutMs = HELLO_TIMEOUT_MS): Promise<void> {
    const channel = await this.o.connect();
    // A link is background work: it never keeps a stopping worker alive.
    (channel as { unref?: () => void }).unref?.();
    if (this.stopped) {
      channel.destroy();
      return;
    }
    const s = new MuxSession(channel, { role: 'host' });
    this.session = s;
    let ready = false;
    s.on('stream', (conn: Duplex) => this.o.sink.accept(this.o.taskId, conn));
    s.on('close', (err?: Error) => {
      if (this.session !== s) return;
      this.session = undefined;
      // A session that never came up is start()'s to retry, not ours.
      if (!ready) return;
      if (err) {
        this.lastViolation = err.message;
        this.o.logger?.warn(
          { taskId: this.o.taskId, violation: err.message },
          'egress: the guest broke the stream protocol; its connections were reset',
        );
      }
      this.later(err ? AFTER_VIOLATION_MS : this.retryMs);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        s.close();
        reject(new Error(`the guest's egress port did not answer within ${helloTimeoutMs / 1000} s`));
      }, helloTimeoutMs);
      s.once('ready', () => {
        ready = true;
        clearTimeout(timer);
        this.retryMs = RETRY_MIN_MS;
        resolve();
      });
      s.once('close', (err?: Error) => {
        clearTimeout(timer);
        reject(err ?? new Error("the guest's egress port closed"));
      });
    });
  }

  private later(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.attach().catch(() => {
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        this.later(this.retryMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** Closes the session and every stream on it; no reconnect. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.session;
    this.session = undefined;
    s?.close();
  }
}
