/**
 * The egress proxy on the host: a guest's only way out. One listener per VM, so the proxy knows
 * which task a request comes from.
 *
 * - Model API: the guest's Claude Code uses `ANTHROPIC_BASE_URL=http://<proxy>`; the proxy
 *   forwards to the real model API over HTTPS and adds the API key itself (and drops any key or
 *   authorization the guest sent), so the key never exists in the guest.
 * - Other hosts: `CONNECT host:443` (HTTPS_PROXY) or absolute-URI HTTP requests, to hosts on
 *   the allowlist only; everything else gets 403 with the reason.
 * - Idle tracking: a model request in flight counts as agent activity, so an agent that is
 *   waiting for the model is never suspended mid-task.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { meterResponse } from './usage-meter.js';

export interface EgressOptions {
  /** Where model requests go, e.g. https://api.anthropic.com */
  modelBaseUrl: string;
  /** Added to every model request as x-api-key; undefined → requests are refused with a clear 401. */
  apiKey: string | undefined;
  /** Host names (or host:port) a guest may reach besides the model API. */
  allowHosts: string[];
}

interface Listener {
  server: http.Server;
  port: number;
  inFlight: number;
  lastActivity: number;
}

const HOP_HEADERS = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
];
const SECRET_HEADERS = ['x-api-key', 'authorization'];

export class EgressProxy extends EventEmitter {
  private readonly byTask = new Map<string, Listener>();
  private readonly model: URL;

  constructor(private readonly o: EgressOptions) {
    super();
    this.model = new URL(o.modelBaseUrl);
  }

  /** Opens (or returns) the task's listener on 127.0.0.1; the VM's network forwards to it. */
  async open(taskId: string, port = 0): Promise<number> {
    const existing = this.byTask.get(taskId);
    if (existing) return existing.port;
    const l: Listener = { server: http.createServer(), port: 0, inFlight: 0, lastActivity: 0 };
    l.server.on('request', (req, res) => this.onRequest(taskId, l, req, res));
    l.server.on('connect', (req, socket: net.Socket, head) => this.onConnect(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      l.server.once('error', reject);
      l.server.listen(port, '127.0.0.1', () => resolve());
    });
    l.port = (l.server.address() as net.AddressInfo).port;
    this.byTask.set(taskId, l);
    return l.port;
  }

  async close(taskId: string): Promise<void> {
    const l = this.byTask.get(taskId);
    if (!l) return;
    this.byTask.delete(taskId);
    l.server.closeAllConnections();
    await new Promise<void>((r) => l.server.close(() => r()));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.byTask.keys()].map((id) => this.close(id)));
  }

  /** True while a model request of this task is in flight. */
  busy(taskId: string): boolean {
    return (this.byTask.get(taskId)?.inFlight ?? 0) > 0;
  }

  port(taskId: string): number | undefined {
    return this.byTask.get(taskId)?.port;
  }

  private allowed(host: string, port: number): boolean {
    const h = host.toLowerCase();
    return this.o.allowHosts.some((a) => {
      const [ah, ap] = a.toLowerCase().split(':');
      return ah === h && (!ap || Number(ap) === port);
    });
  }

  private refuse(res: http.ServerResponse, status: number, message: string) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ type: 'error', error: { type: 'lia_egress', message } }));
  }

  private onRequest(taskId: string, l: Listener, req: http.IncomingMessage, res: http.ServerResponse) {
    const url = req.url ?? '/';
    if (/^https?:\/\//i.test(url)) return this.forwardAbsolute(req, res, new URL(url));
    // A path-only request is for the model API.
    if (!this.o.apiKey) {
      return this.refuse(res, 401, 'Lia: no model API key is configured on the host (LIA__CLAUDE__API_KEY)');
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_HEADERS.includes(k) && !SECRET_HEADERS.includes(k) && k !== 'host') headers[k] = v;
    }
    headers.host = this.model.host;
    headers['x-api-key'] = this.o.apiKey;
    // The model base URL may carry a path prefix; the guest's path goes after it.
    const target = new URL(this.model.href.replace(/\/$/, '') + (url.startsWith('/') ? url : `/${url}`));
    l.inFlight++;
    this.emit('activity', taskId);
    const done = () => {
      l.inFlight = Math.max(0, l.inFlight - 1);
      l.lastActivity = Date.now();
      this.emit('activity', taskId);
    };
    const client = target.protocol === 'https:' ? https : http;
    const up = client.request(target, { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const status = upRes.statusCode ?? 0;
      meterResponse(upRes, (usage, body) => {
        if (usage) this.emit('usage', taskId, usage);
        // The host's key was refused: nothing the agent does will work until the operator fixes it.
        if (status === 401) this.emit('model-refused', taskId, status, modelError(body));
      });
      upRes.pipe(res);
      upRes.on('end', done);
      upRes.on('error', done);
    });
    up.on('error', (err) => {
      done();
      if (!res.headersSent) this.refuse(res, 502, `Lia: the model API could not be reached: ${err.message}`);
      else res.destroy();
    });
    req.pipe(up);
  }

  private forwardAbsolute(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (!this.allowed(url.hostname, port)) {
      return this.refuse(res, 403, `Lia: ${url.host} is not on this host's egress allowlist`);
    }
    const headers = { ...req.headers };
    for (const h of HOP_HEADERS) delete headers[h];
    const up = http.request(url, { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (err) => this.refuse(res, 502, `Lia: ${url.host} could not be reached: ${err.message}`));
    req.pipe(up);
  }

  private onConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer) {
    const [host, portText] = (req.url ?? '').split(':');
    const port = Number(portText || 443);
    if (!host || !this.allowed(host, port)) {
      socket.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nLia: ${req.url} is not on this host's egress allowlist\n`,
      );
      return;
    }
    const up = net.connect(port, host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    socket.on('error', () => up.destroy());
  }
}

/** The host's proxy as configured: model API from LIA__CLAUDE__*, other hosts from LIA__VM__EGRESS_ALLOW. */
export function egressFromConfig(config: {
  claude: { base_url: string; api_key?: string };
  vm: { egress_allow: string[] };
}): EgressProxy {
  return new EgressProxy({
    modelBaseUrl: config.claude.base_url,
    apiKey: config.claude.api_key,
    allowHosts: config.vm.egress_allow,
  });
}

function modelError(body: string): string {
  try {
    const e = JSON.parse(body) as { error?: { message?: string } };
    if (e.error?.message) return e.error.message;
  } catch {
    // Not the API's error shape.
  }
  return body.slice(0, 200) || 'no message';
}
