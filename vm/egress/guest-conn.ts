/**
 * One connection from a guest, whatever carried it (a TCP socket QEMU forwarded, a stream over
 * the VM's channel): the proxy's HTTP server reads and writes this wrapper, never the stream
 * itself, so both paths behave the same and the proxy sees every byte. It
 *
 * - knows its task, and when a byte last went either way;
 * - closes itself after `idleMs` without a byte, except while a model request on it waits for the
 *   model API (the model request's own timeouts govern that wait);
 * - keeps backpressure: a guest that does not read stops what is sent to it.
 */
import { Duplex } from 'node:stream';

export class GuestConn extends Duplex {
  lastActivity = Date.now();
  /** Model requests on this connection in flight. */
  modelActive = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly taskId: string,
    private readonly inner: Duplex,
    private readonly idleMs: number,
  ) {
    super({ allowHalfOpen: true });
    inner.on('data', (chunk: Buffer) => {
      this.touch();
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', () => this.destroy());
    inner.on('close', () => this.destroy());
    // Every error ends the connection, and that is all there is to do about it.
    this.on('error', () => {});
    this.arm(idleMs);
  }

  touch(): void {
    this.lastActivity = Date.now();
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.touch();
    if (this.inner.destroyed) {
      cb(new Error('the guest connection is closed'));
      return;
    }
    this.inner.write(chunk, encoding, (err) => cb(err ?? null));
  }

  /** Ends the guest's side once all that was written has left (a stream waiting for the guest's credit lingers, until the idle timeout). */
  override _final(cb: (err?: Error | null) => void): void {
    if (this.inner.writableFinished) {
      cb();
      return;
    }
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.inner.destroy();
    cb(err);
  }

  // What node's HTTP server calls on a socket; timeouts are this class's own business.
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.checkIdle(), Math.max(1, ms));
    this.timer.unref();
  }

  private checkIdle(): void {
    if (this.destroyed) return;
    if (this.modelActive > 0) {
      this.arm(this.idleMs);
      return;
    }
    const left = this.lastActivity + this.idleMs - Date.now();
    if (left > 0) {
      this.arm(left);
      return;
    }
    this.destroy();
  }
}
