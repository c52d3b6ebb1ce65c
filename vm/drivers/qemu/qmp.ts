/**
 * A minimal QMP client (QEMU Machine Protocol: JSON lines on a Unix socket). QEMU greets,
 * we send qmp_capabilities, then commands answer in order; asynchronous events are skipped.
 */
import net from 'node:net';

export class QmpError extends Error {}

/** QEMU is the guest's neighbour: a line longer than this is not QMP, and ends the connection. */
const MAX_LINE = 1024 * 1024;

export class Qmp {
  private buf = '';
  private waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private closed?: Error;

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) {
          let m: Record<string, unknown>;
          try {
            m = JSON.parse(line);
          } catch {
            sock.destroy(new QmpError('QMP: a line that is not JSON'));
            return;
          }
          this.onMessage(m);
        }
      }
      if (this.buf.length > MAX_LINE) sock.destroy(new QmpError('QMP: a line over 1 MiB'));
    });
    const gone = (err?: Error) => {
      this.closed = err ?? new QmpError('QMP connection closed');
      for (const w of this.waiting.splice(0)) w.reject(this.closed);
    };
    sock.on('error', gone);
    sock.on('close', () => gone());
  }

  static async connect(socketPath: string, timeoutMs = 5000): Promise<Qmp> {
    const sock = net.createConnection(socketPath);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new QmpError(`QMP: no connection to ${socketPath}`)), timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    const q = new Qmp(sock);
    await q.next(); // the greeting
    await q.execute('qmp_capabilities');
    return q;
  }

  private onMessage(m: Record<string, unknown>): void {
    if ('event' in m) return;
    const w = this.waiting.shift();
    if (!w) return;
    if ('error' in m) {
      const e = m.error as { class?: string; desc?: string };
      w.reject(new QmpError(`QMP: ${e.desc ?? e.class ?? 'error'}`));
    } else w.resolve(m.return ?? m.QMP);
  }

  private next(): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const p = this.next();
    this.sock.write(
      `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
    );
    return p as Promise<T>;
  }

  close(): void {
    this.sock.destroy();
  }
}
