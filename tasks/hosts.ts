/**
 * Hosts, as an admin sees and steers them: their state (active, draining, lost), their slots,
 * and a drain (no new placements; their tasks go on) or its undoing.
 */
import { type HostRecord, listHosts, setHostState } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { TaskError } from './errors.js';
import type { Actor } from './service.js';

export interface HostView {
  id: string;
  state: HostRecord['state'];
  stateReason: string | null;
  driver: string;
  acceleration: string;
  slots: { used: number; max: number };
  heartbeatAt: string;
}

export class HostService {
  /** @param wakeQueue wakes the task at the head of the placement queue (an activated host has room). */
  constructor(
    private readonly pool: Pool,
    private readonly wakeQueue: () => Promise<void> = async () => {},
  ) {}

  async list(actor: Actor): Promise<HostView[]> {
    admin(actor);
    return (await listHosts(this.pool)).map((h) => ({
      id: h.id,
      state: h.state,
      stateReason: h.stateReason,
      driver: h.driver,
      acceleration: h.acceleration,
      slots: { used: h.used, max: h.maxVms },
      heartbeatAt: h.heartbeatAt.toISOString(),
    }));
  }

  async setState(actor: Actor, id: string, state: 'active' | 'draining'): Promise<void> {
    admin(actor);
    const reason = state === 'draining' ? `drained by ${actor.userId}` : `activated by ${actor.userId}`;
    if (!(await setHostState(this.pool, id, state, reason)))
      throw new TaskError('not_found', `no host ${id}`);
  }
}

function admin(actor: Actor): void {
  if (!actor.admin) throw new TaskError('forbidden', 'only an admin may see and steer hosts');
}
