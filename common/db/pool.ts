import pg from 'pg';

// bigint columns (seq) come back as numbers: output seqs stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'lia' });
  // An idle client's error (e.g. the server restarting) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/** A dedicated connection for LISTEN, outside the pool. */
export async function listenClient(url: string, channels: string[]): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'lia-listen' });
  await client.connect();
  for (const ch of channels) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
  return client;
}

/**
 * Runs `fn` in one transaction on one client: committed when it returns, rolled back when it
 * throws or returns `{ rollback: value }` (a refusal that must write nothing).
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T | { rollback: T }>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const r = await fn(client);
    if (r && typeof r === 'object' && 'rollback' in r) {
      await client.query('ROLLBACK');
      return r.rollback;
    }
    await client.query('COMMIT');
    return r as T;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
