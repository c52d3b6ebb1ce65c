/**
 * Firecracker's hybrid vsock, host side: connect to the VM's vsock Unix socket, write
 * `CONNECT <port>\n`, read `OK <host port>\n`; from then on the socket is a stream to the
 * guest's listener on that port.
 */
import net from 'node:net';

export async function connectVsock(udsPath: string, port: number, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(udsPath);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new Error(`vsock: no answer to CONNECT ${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    // 'readable' rather than 'data': removing the last 'readable' listener puts the socket back
    // in its initial mode, so bytes the guest sent right after OK wait for the caller's reader.
    const onReadable = () => {
      for (let d = sock.read() as Buffer | null; d; d = sock.read() as Buffer | null)
        buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 64) fail(new Error('vsock: handshake answer too long'));
        return;
      }
      const line = buf.subarray(0, nl).toString('ascii');
      if (!/^OK \d+$/.test(line))
        return fail(new Error(`vsock: CONNECT ${port} refused (${JSON.stringify(line)})`));
      clearTimeout(timer);
      sock.off('readable', onReadable);
      sock.off('error', fail);
      const rest = buf.subarray(nl + 1);
      if (rest.length) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('readable', onReadable);
    sock.once('error', fail);
    sock.once('connect', () => sock.write(`CONNECT ${port}\n`));
  });
}
