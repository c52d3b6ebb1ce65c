/** The Hono app: /api/v1 (authenticated REST + stream), /healthz, and the built web UI. */
import fs from 'node:fs';
import path from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { UpgradeWebSocket } from 'hono/ws';
import type { WebSocket } from 'ws';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { metrics } from '../common/metrics.js';
import { LIMITS } from '../common/task.js';
import type { TaskBus } from '../output/bus.js';
import type { OutputLog } from '../output/log.js';
import type { HostService } from '../tasks/hosts.js';
import type { LinkSigner } from '../tasks/links.js';
import type { TaskService } from '../tasks/service.js';
import { type AuthEnv, authenticate } from './auth.js';
import { errorBody, HttpError, sendError, toHttpError } from './errors.js';
import { conversationRoutes } from './routes/conversation.js';
import { hostRoutes } from './routes/hosts.js';
import { outputRoutes } from './routes/output.js';
import { SocketCounter, streamRoutes } from './routes/stream.js';
import { taskRoutes } from './routes/tasks.js';
import { taskScope } from './task-scope.js';

export interface AppDeps {
  config: Config;
  tasks: TaskService;
  hosts: HostService;
  output: OutputLog;
  links: LinkSigner;
  logger: Logger;
  bus: TaskBus;
  upgradeWebSocket: UpgradeWebSocket<WebSocket>;
  /** The built web UI (vite build output); served when it exists. */
  webDist?: string;
}

/** Base64 grows files by 4/3; leave room for the prompt and JSON around them. */
const MAX_BODY_BYTES = Math.ceil((LIMITS.filesTotalMaxBytes * 4) / 3) + LIMITS.promptMaxChars * 4 + 64 * 1024;

/** Builds the routes on `app` (the root: a sub-app's notFound would not apply). */
export function createApp(d: AppDeps, app = new Hono<AuthEnv>()): Hono<AuthEnv> {
  app.onError((err, c) => {
    const http = toHttpError(err);
    if (http) return sendError(c, http);
    d.logger.error({ err: err.message, stack: err.stack, path: c.req.path }, 'unhandled API error');
    return c.json(errorBody('internal', 'internal error; the operator can find details in the API log'), 500);
  });
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? sendError(c, new HttpError(404, 'not_found', `no route ${c.req.method} ${c.req.path}`))
      : c.text('not found', 404),
  );

  app.get('/healthz', (c) => c.json({ ok: true }));

  // Every API request counted by its route's pattern (never its ids) and status.
  app.use('/api/*', async (c, next) => {
    await next();
    metrics.apiRequests.inc({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
  });

  const api = new Hono<AuthEnv>();
  api.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        sendError(
          c,
          new HttpError(
            413,
            'too_large',
            `the request body is larger than ${Math.floor(MAX_BODY_BYTES / 1024 / 1024)} MiB`,
          ),
        ),
    }),
  );
  api.use('*', authenticate(d.config, d.links));
  // The door of every per-task route: the id parsed, a link held to its own task.
  api.use('/tasks/:id', taskScope(d.tasks));
  api.use('/tasks/:id/*', taskScope(d.tasks));
  api.route('/tasks', taskRoutes(d.tasks));
  api.route('/tasks', outputRoutes(d.tasks, d.output));
  api.route('/tasks', conversationRoutes(d.tasks));
  api.route('/tasks', streamRoutes({ ...d, sockets: new SocketCounter() }));
  api.route('/hosts', hostRoutes(d.hosts));
  app.route('/api/v1', api);

  const dist = d.webDist;
  if (dist && fs.existsSync(path.join(dist, 'index.html'))) {
    const root = path.relative(process.cwd(), dist) || '.';
    app.use('/assets/*', serveStatic({ root }));
    // The single-page app answers every other page route (e.g. /tasks/<id>).
    const index = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
    app.get('*', (c, next) => (c.req.path.startsWith('/api/') ? next() : c.html(index)));
  } else {
    app.get('/', (c) => c.text('Lia API. The web UI is not built (npm run build:web).'));
  }
  return app;
}
