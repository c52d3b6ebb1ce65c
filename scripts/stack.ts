/**
 * Brings up the parts Lia needs that are not configured: a private Temporal dev server and a
 * private PostgreSQL, then the schema, the secrets and the workflow bundle. Used by the start
 * command; each step prints what it does.
 */
import fs from 'node:fs';
import type { Config } from '../common/config.js';
import { migrate } from '../common/db/migrate.js';
import { ensurePrivateCluster } from '../postgres-dev/cluster.js';
import { ensureTemporalCli } from '../temporal-dev/cli.js';
import { startDevServer } from '../temporal-dev/server.js';
import { ensureWorkflowBundle } from '../workers/bundle.js';
import { keptSecret } from '../workers/secrets.js';

export interface Stack {
  databaseUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  serviceToken: string;
  serviceTokenFile?: string;
  linkSecret: string;
  workflowBundlePath: string;
  stop(): Promise<void>;
}

const say = (m: string) => process.stderr.write(`${m}\n`);

export async function bringUpStack(config: Config): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    fs.mkdirSync(config.state.dir, { recursive: true });
    let temporalAddress = config.temporal.address;
    let temporalUiUrl: string | undefined;
    if (!temporalAddress) {
      const cli = await ensureTemporalCli(config.temporal.cli, say);
      say(`[temporal] starting the dev server (${cli})…`);
      const server = await startDevServer({
        cli,
        stateDir: config.state.dir,
        port: config.temporal.port,
        uiPort: config.temporal.ui_port,
        namespace: config.temporal.namespace,
        progress: say,
      });
      stops.push(server.stop);
      temporalAddress = server.address;
      temporalUiUrl = server.uiUrl;
    }
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      const cluster = await ensurePrivateCluster(config.state.dir, say);
      stops.push(cluster.stop);
      databaseUrl = cluster.url;
    }
    say('[postgres] applying migrations…');
    await migrate(databaseUrl);
    const token = keptSecret(config.state.dir, 'service-token', config.api.service_token);
    const linkSecret = keptSecret(config.state.dir, 'link-secret', config.api.link_secret).value;
    const workflowBundlePath = await ensureWorkflowBundle(config.state.dir, say);
    return {
      databaseUrl,
      temporalAddress,
      temporalUiUrl,
      serviceToken: token.value,
      serviceTokenFile: token.file,
      linkSecret,
      workflowBundlePath,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
