/**
 * Where a guest's outgoing connections go on the host: the egress proxy (vm/egress/proxy.ts),
 * which takes a connection it did not accept itself, with the task it belongs to. The VM's egress
 * link hands it every stream the guest opens; nothing here knows the proxy's rules.
 */
import type { Duplex } from 'node:stream';

export interface EgressSink {
  /** A connection the guest of `taskId` opened; the sink owns it from now on. */
  accept(taskId: string, conn: Duplex): void;
  /** The task's VM is gone: drop whatever the sink keeps for it. */
  close?(taskId: string): Promise<void>;
}
