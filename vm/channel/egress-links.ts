/**
 * A driver's egress links (egress-link.ts), one per running VM, by the VM's name. A VM can take
 * another name once (qemu's pool: a spare taken by a task): its link is handed over rather than
 * restarted — a new one would make the guest's relay start over — and from then on connects and
 * hands streams over under the new name.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/logger.js';
import { EgressLink } from './egress-link.js';
import type { EgressSink } from './egress-sink.js';

export interface EgressLinksOptions {
  /** Where the guests' connections go; without it no VM has a link. */
  sink?: EgressSink;
  /** A fresh stream to the egress port of the VM named `id`. */
  connect: (id: string) => Promise<Duplex>;
  /** Streams from the VM named `id` are closed, not handed to the sink (no agent runs there). */
  refuse?: (id: string) => boolean;
  logger?: Logger;
}

export class EgressLinks {
  private readonly links = new Map<string, EgressLink>();
  private readonly owners = new WeakMap<EgressLink, { id: string }>();

  constructor(private readonly o: EgressLinksOptions) {}

  /** (Re)starts the VM's link; resolves once the guest answered. */
  async attach(taskId: string): Promise<void> {
    const sink = this.o.sink;
    if (!sink) return;
    this.links.get(taskId)?.stop();
    const owner = { id: taskId };
    const link = new EgressLink({
      taskId,
      connect: () => this.o.connect(owner.id),
      sink: {
        accept: (_id, conn) => {
          if (this.o.refuse?.(owner.id)) conn.destroy();
          else sink.accept(owner.id, conn);
        },
      },
      logger: this.o.logger,
    });
    this.links.set(taskId, link);
    this.owners.set(link, owner);
    await link.start();
  }

  detach(taskId: string): void {
    this.links.get(taskId)?.stop();
    this.links.delete(taskId);
  }

  connected(taskId: string): boolean {
    return this.links.get(taskId)?.connected ?? false;
  }

  /** The link of the VM named `from` serves it as `to` from now on; false when it has none. */
  handOver(from: string, to: string): boolean {
    const link = this.links.get(from);
    const owner = link && this.owners.get(link);
    if (!link || !owner) return false;
    this.links.delete(from);
    this.links.get(to)?.stop();
    this.links.set(to, link);
    owner.id = to;
    return true;
  }
}
