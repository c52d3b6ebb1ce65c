/**
 * The guest channel: how the host reaches a VM's sidecar, whatever the VMM. Two ports, each a
 * plain byte stream to a listener of the sidecar in the guest:
 *   session  the agent's session (vm/protocol.ts), one host at a time
 *   egress   the streams of the guest's outgoing connections (vm/channel/mux.ts)
 * Two ports rather than one multiplexed: each has its own flow control in the transport (a
 * virtqueue, a vsock connection), so a download never holds up a keystroke, and the session
 * protocol stays what it is.
 *
 * QEMU: virtio-serial ports, which QEMU serves as Unix sockets on the host. Firecracker: vsock,
 * through its hybrid Unix socket (`CONNECT <port>`).
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { connectVsock } from './vsock.js';

export type ChannelPort = 'session' | 'egress';

export interface GuestChannel {
  /** A fresh stream to the guest's listener on that port; rejects when nothing answers. */
  connect(port: ChannelPort, timeoutMs?: number): Promise<Duplex>;
}

/** virtio-serial ports as QEMU serves them: a Unix socket per port. */
export class SerialChannel implements GuestChannel {
  constructor(private readonly sockets: Record<ChannelPort, string>) {}

  connect(port: ChannelPort, timeoutMs = 5000): Promise<Duplex> {
    const file = this.sockets[port];
    // The folder is the VMM user's: take only a socket there, never a link it put in its place.
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st) return Promise.reject(new Error(`no ${port} socket at ${file}`));
    if (!st.isSocket()) return Promise.reject(new Error(`${file} is not a socket`));
    return new Promise((resolve, reject) => {
      const s = net.createConnection(file);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no connection to ${file} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }
}

/** The sidecar's vsock ports (guest side), the same in every image. */
export const VSOCK_PORTS: Record<ChannelPort, number> = { session: 1024, egress: 1025 };

/** Firecracker's hybrid vsock: one Unix socket, a `CONNECT <port>` handshake per connection. */
export class VsockChannel implements GuestChannel {
  constructor(private readonly udsPath: string) {}

  connect(port: ChannelPort, timeoutMs = 5000): Promise<Duplex> {
    return connectVsock(this.udsPath, VSOCK_PORTS[port], timeoutMs);
  }
}
