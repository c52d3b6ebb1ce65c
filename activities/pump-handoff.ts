/**
 * Pumps that bootVm started, waiting for the workflow's pumpOutput activity to take them over.
 * One that nobody claims (the workflow went another way, or took too long) is stopped: the
 * sidecar keeps what it has not had acknowledged, so the next pump loses nothing.
 */
/** What the handoff needs of a pump. */
export interface HandedPump {
  readonly taskId: string;
  /** Stores what it has received, then lets go of the sidecar. */
  stop(): Promise<void>;
}

export class PumpHandoff<P extends HandedPump = HandedPump> {
  private readonly waiting = new Map<string, { pump: P; timer: NodeJS.Timeout }>();

  constructor(private readonly unclaimedMs = 60_000) {}

  offer(pump: P): void {
    void this.release(pump.taskId);
    const timer = setTimeout(() => void this.release(pump.taskId), this.unclaimedMs);
    timer.unref();
    this.waiting.set(pump.taskId, { pump, timer });
  }

  take(taskId: string): P | undefined {
    const w = this.waiting.get(taskId);
    if (!w) return undefined;
    this.waiting.delete(taskId);
    clearTimeout(w.timer);
    return w.pump;
  }

  /** Stops the task's waiting pump, if any, once what it received is stored. */
  async release(taskId: string): Promise<void> {
    await this.take(taskId)?.stop();
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.waiting.keys()].map((id) => this.release(id)));
  }
}
