/**
 * Where a guest's outgoing connections go on the host: the egress proxy, which takes a
 * connection it did not accept itself and knows which task it belongs to. The hardened proxy
 * offers exactly that (`accept(taskId, conn)`); until it is merged, ProxyPortSink below adapts
 * today's proxy, which only knows one TCP listener per task, by piping each stream into a
 * connection to that listener. Swapping it for the proxy itself is the only change needed.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

export interface EgressSink {
  /** A connection the guest of `taskId` opened; the sink owns it from now on. */
  accept(taskId: string, conn: Duplex): void;
  /** The task's VM is gone: drop whatever the sink keeps for it. */
  close?(taskId: string): Promise<void>;
}

/** Today's proxy: a listener per task on 127.0.0.1. */
export interface PortProxy {
  open(taskId: string): Promise<number>;
  close(taskId: string): Promise<void>;
}

/** How long a stream may stay half-closed after the proxy closed its side. */
const LINGER_MS = 30_000;

export class ProxyPortSink implements EgressSink {
  constructor(private readonly proxy: PortProxy) {}

  accept(taskId: string, conn: Duplex): void {
    conn.on('error', () => {});
    this.proxy.open(taskId).then(
      (port) => {
        if (conn.destroyed) return;
        const sock = net.connect(port, '127.0.0.1');
        sock.setNoDelay(true);
        sock.unref();
        conn.pipe(sock);
        sock.pipe(conn);
        sock.on('error', () => conn.destroy());
        // The guest's side is gone (reset, or both directions done): nothing more to carry.
        conn.on('close', () => sock.destroy());
        // The proxy closed cleanly: what it sent may still be on its way to the guest (waiting
        // for the guest's credit), so end rather than destroy, and give up after a while.
        sock.on('close', (hadError) => {
          if (hadError) conn.destroy();
          else setTimeout(() => conn.destroy(), LINGER_MS).unref();
        });
      },
      () => conn.destroy(),
    );
  }

  close(taskId: string): Promise<void> {
    return this.proxy.close(taskId);
  }
}
