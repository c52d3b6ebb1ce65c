/** The bot role: the Discord bot (LIA__DISCORD__TOKEN). It acts through the task service, like the API. */
import { Client } from '@temporalio/client';
import { startBot } from '../../bot/client.js';
import { OutputLog } from '../../output/log.js';
import { LinkSigner } from '../../tasks/links.js';
import { TaskService } from '../../tasks/service.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { keptSecret } from '../secrets.js';
import { connectClientTemporal } from '../temporal-connection.js';
import type { Role } from './role.js';

export const bot: Role = async ({ config, logger, pool, databaseUrl, temporalAddress }) => {
  const linkSecret = keptSecret(config.state.dir, 'link-secret', config.api.link_secret).value;
  const connection = await connectClientTemporal(config, temporalAddress);
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const running = await startBot({
    config,
    tasks: new TaskService(client, pool, config, new LinkSigner(linkSecret, config.api.link_ttl_minutes)),
    output: new OutputLog(pool),
    threadRecords: new ThreadRecords(pool),
    logger,
    databaseUrl,
  });
  let stopped: () => void = () => {};
  const done = new Promise<void>((r) => {
    stopped = r;
  });
  return {
    info: { warnings: running.warnings },
    done,
    async stop() {
      await running.stop();
      await connection.close();
      stopped();
    },
  };
};
