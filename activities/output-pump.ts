/**
 * The output pump: sidecar → PostgreSQL (numbered chunks + NOTIFY), PostgreSQL → sidecar
 * (queued input). It resumes where the database left off, so a worker that died mid-way
 * neither loses nor doubles a byte: the sidecar keeps every chunk until we acknowledge it.
 *
 * A pump is not tied to one activity: bootVm starts one so the agent's first output reaches the
 * browser while the workflow is still recording the boot, and pumpOutput takes it over.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { SignalDefinition } from '@temporalio/common';
import pRetry from 'p-retry';
import type { AgentExit } from '../common/activities.js';
import { finishTurn, markTurnRunning } from '../common/db/conversation.js';
import { consumeInput, pendingInput } from '../common/db/input.js';
import { pullRequestAfterTurn } from '../common/db/task-repo.js';
import { firstOutputStored, saveSummary, setIdleDeadline } from '../common/db/tasks.js';
import { metrics } from '../common/metrics.js';
import { coalesced } from '../common/rerun.js';
import type { Runtime } from '../common/task.js';
import type { Chunk } from '../output/log.js';
import type { SidecarMessage } from '../vm/protocol.js';
import type { SidecarConnection } from '../vm/sidecar/client.js';
import { agentActivitySignal, pullRequestAfterTurnSignal } from '../workflows/definitions.js';
import { describeAgentExit } from './agent-command.js';
import { ConversationLink } from './conversation-link.js';
import type { HostActivityDeps } from './deps.js';
import { DiffLink } from './forge/diff.js';
import { type GuestMarker, MarkerScanner } from './marker-scanner.js';
import { connectSidecar, sendStart } from './sidecar-session.js';

/** Output received but not yet stored, past which the pump stops reading from the guest. */
const PAUSE_READING_ABOVE = 4 * 1024 * 1024;
const RESUME_READING_BELOW = 1024 * 1024;
/** Input rows read at a time (each at most 64 KiB): what the pump holds of the owner's typing. */
const INPUT_BATCH = 32;

export class OutputPump {
  /** The highest seq stored in PostgreSQL. */
  stored: number;
  /** Settles when the agent exited, the sidecar connection closed, or the model API refused the key. */
  readonly ended: Promise<void>;

  /** Received, not yet stored; each with the markers it completed (recorded before its ack). */
  private pending: (Chunk & { markers?: GuestMarker[] })[] = [];
  private pendingBytes = 0;
  private firstStored = false;
  private readingPaused = false;
  private writing: Promise<void> | undefined;
  private failed: unknown;
  private bytesSinceTrim = 0;
  private exit: AgentExit | undefined;
  private refused: string | undefined;
  private ioSinceReport = false;
  private end = () => {};
  private readonly cleanups: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly d: HostActivityDeps,
    private readonly conn: SidecarConnection,
    readonly taskId: string,
    private readonly runtime: Runtime,
    stored: number,
    /** The task's idle timeout: each report projects the new deadline into the task's row. */
    private readonly idleTimeoutMs?: number,
  ) {
    this.stored = stored;
    this.ended = new Promise<void>((resolve) => {
      this.end = resolve;
    });
  }

  /** Connects, attaches from the first seq not yet stored, and starts the agent if it is idle. */
  static async open(
    d: HostActivityDeps,
    taskId: string,
    runtime: Runtime,
    reportMs: number,
    idleTimeoutMs?: number,
  ): Promise<OutputPump> {
    const conn = await connectSidecar(d, taskId);
    let pump: OutputPump;
    try {
      pump = new OutputPump(d, conn, taskId, runtime, await d.output.lastSeq(taskId), idleTimeoutMs);
    } catch (err) {
      conn.close();
      throw err;
    }
    try {
      await pump.attach(reportMs);
    } catch (err) {
      pump.close();
      throw err;
    }
    return pump;
  }

  /** After `ended`: stores what is left and says how the agent ended. */
  async result(): Promise<AgentExit> {
    try {
      await this.drain();
      if (this.failed) throw this.failed;
      if (this.refused) {
        // Said in the terminal too, after everything the agent printed (the VM goes with the task).
        await this.d.output.append(this.taskId, [
          { seq: this.stored + 1, data: Buffer.from(`\r\n\x1b[1;31mLia: ${this.refused}\x1b[0m\r\n`) },
        ]);
        return { exitCode: null, signal: null, message: this.refused };
      }
      if (this.exit) return this.exit;
      // A guest that broke the protocol ends its task (with the reason): it would again.
      if (this.conn.violation) throw this.conn.violation;
      throw ApplicationFailure.retryable('lost the connection to the sidecar', 'SidecarDisconnected');
    } finally {
      this.close();
    }
  }

  /** Stores what has arrived, then lets go of the sidecar (suspend, terminate, cancellation). */
  async stop(): Promise<void> {
    try {
      await this.writing;
      await this.flush().catch(() => {});
    } finally {
      this.close();
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.cleanups) c();
    this.conn.close();
  }

  private async attach(reportMs: number): Promise<void> {
    const { d, conn, taskId } = this;
    const markers = new MarkerScanner();
    const conversation = new ConversationLink(d, conn, taskId, (err) => {
      this.failed ??= err;
      this.end();
    });
    // The API's asks for the task's diff (issue 20), woken on their own channel.
    const diffs = new DiffLink(d.pool, conn, taskId, (err) => {
      this.failed ??= err;
      this.end();
    });
    const onRefused = (id: string, status: number, message: string) => {
      if (id !== taskId || this.refused) return;
      // The model API refusing the host's key ends the task with the reason: it cannot do anything.
      this.refused =
        `the model API refused this host's API key (HTTP ${status}: ${message}); ` +
        'the operator must fix LIA__CLAUDE__API_KEY, then start a new task';
      this.end();
    };
    d.egress?.on('model-refused', onRefused);
    this.cleanups.push(() => d.egress?.off('model-refused', onRefused));

    conn.onFrame(({ header, body }) => {
      const m = header as SidecarMessage;
      // Questions and acknowledgements: not agent activity (a question that waits lets the task sleep).
      if (conversation.onFrame(m, body)) return;
      if (m.type === 'output') {
        if (m.seq <= this.stored) return;
        const found = this.runtime === 'claude-headless' ? markers.push(body) : [];
        this.pending.push({ seq: m.seq, data: body, ...(found.length ? { markers: found } : {}) });
        this.pendingBytes += body.length;
        // The guest sends faster than PostgreSQL stores: stop reading (the sidecar keeps what is
        // not acknowledged, and its PTY blocks) rather than hold it all here.
        if (this.pendingBytes > PAUSE_READING_ABOVE && !this.readingPaused) {
          this.readingPaused = true;
          this.conn.pause();
        }
        this.ioSinceReport = true;
        this.kick();
      } else if (m.type === 'exit') {
        this.exit = {
          exitCode: m.code,
          signal: m.signal,
          message: m.message ?? describeAgentExit(this.runtime, d.config, m.code),
        };
        this.end();
      } else if (m.type === 'error') {
        d.logger.warn({ taskId, message: m.message }, 'sidecar reported an error');
      }
    });
    conn.onClose(() => this.end());

    const onEgress = (id: string) => {
      if (id === taskId) this.ioSinceReport = true;
    };
    d.egress?.on('activity', onEgress);
    const report = setInterval(() => this.report(), reportMs);
    this.cleanups.push(() => {
      clearInterval(report);
      d.egress?.off('activity', onEgress);
    });

    conn.send({ type: 'attach', fromSeq: this.stored + 1 });
    // A VM that runs already may have slept in a snapshot: the clock and randomness of now.
    if (conn.hello.agent !== 'idle')
      conn.send({ type: 'refresh', seed: randomBytes(32).toString('hex'), timeMs: Date.now() });
    // A fresh VM's agent is started here, with the pump already listening; input waits for it.
    if (conn.hello.agent === 'idle') await sendStart(d, conn, taskId, this.runtime);
    // Only now: before the start the sidecar has nowhere to put input, and would drop it.
    this.cleanups.push(
      d.inputBus.watch(taskId, {
        input: () => {
          void this.deliver();
          void conversation.deliver();
        },
        diff: () => void diffs.deliver(),
      }),
    );
    void this.deliver();
    void conversation.deliver();
    void diffs.deliver();
  }

  /** Tells the workflow about agent I/O (which resets its idle timer), at most once per interval. */
  private report(): void {
    // A model request in flight keeps the task awake however long the model takes.
    if (this.d.egress?.busy(this.taskId)) this.ioSinceReport = true;
    if (!this.ioSinceReport) return;
    this.ioSinceReport = false;
    const fail = (err: Error) =>
      this.d.logger.debug({ taskId: this.taskId, err: err.message }, 'activity report failed');
    this.d.client.workflow.getHandle(this.taskId).signal(agentActivitySignal).catch(fail);
    // The same deadline, for whoever reads the task's row (the web page, /status): no query to Temporal.
    if (this.idleTimeoutMs !== undefined)
      setIdleDeadline(this.d.pool, this.taskId, this.idleTimeoutMs).catch(fail);
  }

  private async flush(): Promise<void> {
    const { output, config } = this.d;
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      await output.append(this.taskId, batch);
      // A turn's start and end are recorded before their output is acknowledged: a worker that
      // dies in between gets the chunk again, and records them again (idempotently).
      for (const c of batch) for (const mk of c.markers ?? []) await this.record(mk);
      let bytes = 0;
      for (const c of batch) bytes += c.data.length;
      this.pendingBytes -= bytes;
      metrics.outputBytes.inc(bytes);
      if (!this.firstStored) {
        this.firstStored = true;
        const since = await firstOutputStored(this.d.pool, this.taskId);
        if (since !== undefined) metrics.firstOutputSeconds.observe({ driver: this.d.driver.name }, since);
      }
      if (this.readingPaused && this.pendingBytes < RESUME_READING_BELOW) {
        this.readingPaused = false;
        this.conn.resume();
      }
      const last = batch[batch.length - 1]!.seq;
      this.stored = Math.max(this.stored, last);
      this.conn.send({ type: 'ack', seq: last });
      for (const c of batch) this.bytesSinceTrim += c.data.length;
      if (this.bytesSinceTrim > config.output.retention_bytes / 8) {
        this.bytesSinceTrim = 0;
        await output.enforceRetention(this.taskId, config.output.retention_bytes);
      }
    }
  }

  private async record(m: GuestMarker): Promise<void> {
    if (m.kind === 'turn') await markTurnRunning(this.d.pool, this.taskId, m.n);
    else if (m.summary.turn !== undefined) {
      await finishTurn(this.d.pool, this.taskId, m.summary.turn, m.summary);
      // Before the chunk is acknowledged, so a worker that dies first sends it again.
      if (await pullRequestAfterTurn(this.d.pool, this.taskId, m.summary.turn))
        await this.tellWorkflow(pullRequestAfterTurnSignal, { n: m.summary.turn });
    }
    // A run of the first headless version: one summary, no turns.
    else await saveSummary(this.d.pool, this.taskId, m.summary);
  }

  /** A signal to the task's workflow, tried for a minute (Temporal away); then logged and dropped. */
  private async tellWorkflow<A>(signal: SignalDefinition<[A]>, arg: A): Promise<void> {
    try {
      await pRetry(() => this.d.client.workflow.getHandle(this.taskId).signal(signal, arg), {
        retries: 8,
        minTimeout: 250,
        maxTimeout: 15_000,
        maxRetryTime: 60_000,
      });
    } catch (err) {
      this.d.logger.warn(
        { taskId: this.taskId, signal: signal.name, err: (err as Error).message },
        'could not signal the workflow',
      );
    }
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.flush()
      .catch((err) => {
        this.failed = err;
        this.end();
      })
      .finally(() => {
        this.writing = undefined;
        if (this.pending.length && !this.failed) this.kick();
      });
  }

  /** Whatever arrived before the end is stored before the pump returns or gives up the connection. */
  private async drain(): Promise<void> {
    while (this.writing || this.pending.length) {
      if (!this.writing) this.kick();
      await this.writing;
      if (this.failed) return;
    }
  }

  // Input: what is queued now (e.g. typed while suspended), then again on every notify.
  private lastInputId = 0;
  private readonly deliver = coalesced(async () => {
    if (this.closed) return;
    try {
      for (;;) {
        const items = await pendingInput(this.d.pool, this.taskId, this.lastInputId, INPUT_BATCH);
        // Only as fast as the channel drains: a guest that stops reading leaves the owner's
        // input waiting in PostgreSQL (bounded memory here), not piling up in this process.
        let sent = 0;
        for (const it of items) {
          const more =
            it.kind === 'stdin'
              ? this.conn.send({ type: 'stdin' }, it.data)
              : this.conn.send({ type: 'resize', cols: it.cols, rows: it.rows });
          this.lastInputId = it.id;
          sent++;
          if (!more) break;
        }
        if (!sent) return;
        this.ioSinceReport = true;
        await consumeInput(this.d.pool, this.taskId, this.lastInputId);
        await this.conn.drained();
        if (this.closed) return;
        if (sent < items.length) continue;
        if (items.length < INPUT_BATCH) return;
      }
    } catch (err) {
      this.failed = err;
      this.end();
    }
  });
}
