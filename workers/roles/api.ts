/**
 * The API role: REST, the terminal WebSocket and the web UI. Stateless (links are signed, the
 * output log and the task bus are PostgreSQL): run several behind a reverse proxy. It starts
 * workflows the ordinary way (no eager start: no control worker shares its process).
 */
import { Client } from '@temporalio/client';
import { queueWaker } from '../../activities/queue.js';
import { startApi } from '../../api/server.js';
import { publicUrl } from '../../common/config.js';
import { OutputLog } from '../../output/log.js';
import { HostService } from '../../tasks/hosts.js';
import { LinkSigner } from '../../tasks/links.js';
import { TaskService } from '../../tasks/service.js';
import { ensureWebBuilt } from '../../web/build.js';
import { keptSecret } from '../secrets.js';
import { connectClientTemporal } from '../temporal-connection.js';
import type { Role } from './role.js';

export const api: Role = async ({ config, logger, pool, databaseUrl, temporalAddress }) => {
  config.api.service_token = keptSecret(config.state.dir, 'service-token', config.api.service_token).value;
  const linkSecret = keptSecret(config.state.dir, 'link-secret', config.api.link_secret).value;
  const connection = await connectClientTemporal(config, temporalAddress);
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const links = new LinkSigner(linkSecret, config.api.link_ttl_minutes);
  await ensureWebBuilt((m) => logger.info(m));
  const server = await startApi({
    config,
    tasks: new TaskService(client, pool, config, links),
    hosts: new HostService(pool, queueWaker(pool, client)),
    output: new OutputLog(pool),
    links,
    logger,
    databaseUrl,
  });
  let stopped: () => void = () => {};
  const done = new Promise<void>((r) => {
    stopped = r;
  });
  return {
    info: { url: server.url, publicUrl: publicUrl(config) },
    done,
    async stop() {
      await server.close();
      await connection.close();
      stopped();
    },
  };
};
