/**
 * Real parts for tests: the Temporal dev server and PostgreSQL cluster that `./lia test` brought
 * up (or, when a test file is run on its own, ones started here), a fresh database per file.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { type Config, loadConfig } from '../../common/config.js';
import { migrate } from '../../common/db/migrate.js';
import { LIA_SEARCH_ATTRIBUTE_KEYS } from '../../common/search-attributes.js';
import { createDatabase, ensurePrivateCluster } from '../../postgres-dev/cluster.js';
import { ensureTemporalCli } from '../../temporal-dev/cli.js';
import { ensureWorkflowBundle } from '../../workers/bundle.js';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const testStateDir = path.resolve(
  process.env.LIA_TEST_STATE_DIR ?? path.join(repoRoot, '.lia-state', 'test'),
);

/** A fresh, migrated database on the run's cluster (or on the cluster behind `adminUrl`). */
export async function testDatabase(name: string, adminUrl?: string): Promise<string> {
  const admin =
    adminUrl ?? process.env.LIA_TEST_DATABASE_URL ?? (await ensurePrivateCluster(testStateDir)).url;
  const url = await createDatabase(admin, name);
  await migrate(url);
  return url;
}

export interface TestTemporal {
  address: string;
  client: Client;
  teardown(): Promise<void>;
}

/** The run's Temporal (or the one at `at`), or a dev server started here when there is none. */
export async function testTemporal(at?: string): Promise<TestTemporal> {
  const address = at ?? process.env.LIA_TEST_TEMPORAL_ADDRESS;
  if (address) {
    const connection = await Connection.connect({ address });
    return { address, client: new Client({ connection }), teardown: () => connection.close() };
  }
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: await ensureTemporalCli(process.env.LIA__TEMPORAL__CLI) },
      searchAttributes: LIA_SEARCH_ATTRIBUTE_KEYS,
      ip: '127.0.0.1',
      ui: false,
    },
  });
  return { address: env.address, client: env.client, teardown: () => env.teardown() };
}

export async function workflowBundle(): Promise<string> {
  return process.env.LIA_TEST_WORKFLOW_BUNDLE ?? ensureWorkflowBundle(testStateDir);
}

/** A full config as the processes would load it, from LIA__ variables given here. */
export function testConfig(vars: Record<string, string>): Config {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(vars)) env[k.startsWith('LIA__') ? k : `LIA__${k}`] = v;
  return loadConfig(env);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
