/**
 * Talking to the egress proxy as a guest would: over its TCP listener, or over any byte stream
 * handed to `accept(taskId, conn)` (a pair of in-memory streams, like the VM channel's).
 */
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import type { EgressProxy } from '../../vm/egress/proxy.js';

/** Two connected in-memory streams: what one writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        const o = other();
        if (!o.destroyed) o.push(chunk);
        cb();
      },
      final(cb) {
        const o = other();
        if (!o.destroyed) o.push(null);
        cb();
      },
      destroy(err, cb) {
        const o = other();
        if (!o.destroyed) o.destroy();
        cb(err);
      },
    });
  sides.push(
    make(() => sides[1]!),
    make(() => sides[0]!),
  );
  return [sides[0]!, sides[1]!];
}

/** A guest's side of a connection to the proxy: through accept() (no port) or the TCP listener. */
export function guestConnection(proxy: EgressProxy, taskId: string, port?: number): Duplex {
  if (port !== undefined) return net.connect(port, '127.0.0.1');
  const [guest, host] = duplexPair();
  proxy.accept(taskId, host);
  return guest;
}

export interface GuestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** As it came over the wire (compressed if it was). */
  raw: Buffer;
  /** Decoded. */
  text: string;
}

export function decode(raw: Buffer, encoding: string | undefined): Buffer {
  switch (encoding) {
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'deflate':
      return zlib.inflateSync(raw);
    case 'br':
      return zlib.brotliDecompressSync(raw);
    default:
      return raw;
  }
}

/** One HTTP request from a guest of `taskId`. */
export function guestRequest(
  proxy: EgressProxy,
  taskId: string,
  o: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    port?: number;
    /** Called with the request once it is sent, e.g. to abort it. */
    onResponse?: (res: http.IncomingMessage, req: http.ClientRequest) => void;
  },
): Promise<GuestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      method: o.method ?? 'POST',
      path: o.path,
      headers: { host: 'proxy', 'content-type': 'application/json', ...o.headers },
      createConnection: () => guestConnection(proxy, taskId, o.port) as net.Socket,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      o.onResponse?.(res, req);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const encoding = res.headers['content-encoding'];
        try {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            raw,
            text: decode(raw, encoding).toString('utf8'),
          });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.end(o.body ?? '');
  });
}

/** Writes raw bytes on a fresh guest connection and returns what came back before it closed (or `ms` passed). */
export function rawExchange(conn: Duplex, bytes: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const done = () => {
      clearTimeout(timer);
      conn.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    conn.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    conn.on('error', () => {});
    conn.on('close', done);
    conn.on('end', done);
    conn.write(bytes);
  });
}

export const statusLine = (response: string) => response.split('\r\n')[0] ?? '';

/** A messages request body, as Claude Code sends one. */
export function messagesBody(stream: boolean, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 1024,
    stream,
    system: [{ type: 'text', text: 'You are a test.' }],
    messages: [{ role: 'user', content: 'Hello' }],
    ...extra,
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, check: () => boolean, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - start;
}
