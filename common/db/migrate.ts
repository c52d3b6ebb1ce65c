import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * Brings the schema up to date. Safe to run from several processes at once: each waits for the
 * migration lock (roles of a deployment start together), then finds nothing left to do.
 */
export async function migrate(databaseUrl: string, log: (msg: string) => void = () => {}): Promise<void> {
  await runner({
    databaseUrl,
    dir,
    direction: 'up',
    migrationsTable: 'lia_migrations',
    count: Number.POSITIVE_INFINITY,
    log,
    singleTransaction: true,
    advisoryLockMode: 'wait',
  });
}
