import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Config } from '../common/config.js';
import { connectWorkerTemporal } from './temporal-connection.js';

/**
 * A client on a NativeConnection, for a process that also runs the control worker: pass the
 * connection to the worker too, and workflow starts can be eager (the first workflow task comes
 * back in the start's response, to this process's worker).
 */
export async function connectTemporalShared(
  config: Config,
  address: string,
): Promise<{ client: Client; connection: NativeConnection }> {
  const connection = await connectWorkerTemporal(config, address);
  return { client: new Client({ connection, namespace: config.temporal.namespace }), connection };
}
