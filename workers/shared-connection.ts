import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

/**
 * A client on a NativeConnection, for a process that also runs the control worker: pass the
 * connection to the worker too, and workflow starts can be eager (the first workflow task comes
 * back in the start's response, to this process's worker).
 */
export async function connectTemporalShared(
  address: string,
  namespace: string,
): Promise<{ client: Client; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address });
  return { client: new Client({ connection, namespace }), connection };
}
