/** Starts the API: HTTP + WebSocket on LIA__SERVER__PORT, one LISTEN connection for streams. */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createNodeWebSocket } from '@hono/node-ws';
import { Hono } from 'hono';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { HostService } from '../tasks/hosts.js';
import type { LinkSigner } from '../tasks/links.js';
import type { TaskService } from '../tasks/service.js';
import { createApp } from './app.js';
import type { AuthEnv } from './auth.js';

export interface ApiOptions {
  config: Config;
  tasks: TaskService;
  hosts: HostService;
  output: OutputLog;
  links: LinkSigner;
  logger: Logger;
  databaseUrl: string;
  webDist?: string;
}

export interface RunningApi {
  url: string;
  port: number;
  /** Cuts every open stream from the server's side (clients reconnect); returns how many. */
  dropStreams(): number;
  close(): Promise<void>;
}

export const MAX_FRAME_BYTES = 128 * 1024;

export const DEFAULT_WEB_DIST = path.resolve(import.meta.dirname, '..', 'web', 'dist');

export async function startApi(o: ApiOptions): Promise<RunningApi> {
  const bus = await TaskBus.start(o.databaseUrl, o.logger);
  const root = new Hono<AuthEnv>();
  const { injectWebSocket, upgradeWebSocket, wss } = createNodeWebSocket({ app: root });
  // A client frame is at most one input (64 KiB, as JSON) or a resize: refuse bigger ones
  // before they are read into memory (ws's default is 100 MiB).
  wss.options.maxPayload = MAX_FRAME_BYTES;
  createApp({ ...o, bus, upgradeWebSocket, webDist: o.webDist ?? DEFAULT_WEB_DIST }, root);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: root.fetch, port: o.config.server.port, hostname: o.config.server.host }, () =>
      resolve(s),
    );
  });
  injectWebSocket(server);
  const port = (server.address() as AddressInfo).port;
  const host =
    o.config.server.host === '0.0.0.0' || o.config.server.host === '::' ? '127.0.0.1' : o.config.server.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  o.logger.info({ url }, 'API listening');
  return {
    url,
    port,
    dropStreams() {
      let n = 0;
      for (const c of wss.clients) {
        c.terminate();
        n++;
      }
      return n;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
      await bus.close();
    },
  };
}
