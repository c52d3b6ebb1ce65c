/**
 * Host activities: the VM lifecycle and the output pump, run by the worker of the host that
 * holds the VM. Everything here is idempotent or resumable, because Temporal retries it.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AgentExit, HostActivities } from '../common/activities.js';
import type { Config } from '../common/config.js';
import { consumeInput, pendingInput } from '../common/db/input.js';
import { appendChunks, type Chunk, enforceRetention, lastSeq } from '../common/db/output.js';
import type { Pool } from '../common/db/pool.js';
import type { TaskBus } from '../common/db/task-bus.js';
import { getTask, readTaskFiles, saveSummary } from '../common/db/tasks.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/task.js';
import { type VmDriver, VmError } from '../vm/driver.js';
import type { EgressProxy } from '../vm/egress/proxy.js';
import type { SidecarMessage } from '../vm/protocol.js';
import { SidecarConnection } from '../vm/sidecar/client.js';
import { agentActivitySignal } from '../workflows/definitions.js';
import { agentCommand, describeAgentExit } from './agent-command.js';
import { SummaryScanner } from './summary-scanner.js';

export interface HostActivityDeps {
  driver: VmDriver;
  pool: Pool;
  config: Config;
  logger: Logger;
  client: Client;
  /** Listens on the input channel: wakes a task's pump when input is queued for it. */
  inputBus: TaskBus;
  /** The host's egress proxy: a model request in flight is agent activity. */
  egress?: Pick<EgressProxy, 'busy' | 'on' | 'off'>;
}

const HELLO_TIMEOUT_MS = 15_000;

function vmFailure(err: unknown): never {
  if (err instanceof VmError && !err.retryable) {
    throw ApplicationFailure.create({ type: 'VmError', message: err.message, nonRetryable: true });
  }
  throw err;
}

export function createHostActivities(d: HostActivityDeps): HostActivities {
  const { driver, logger } = d;
  const heartbeat = (what: string) => Context.current().heartbeat(what);

  async function connect(taskId: string): Promise<SidecarConnection> {
    return SidecarConnection.open(await driver.connect(taskId), HELLO_TIMEOUT_MS);
  }

  /** Starts the agent unless it already runs (an earlier attempt started it). */
  async function startIfIdle(taskId: string, runtime: Runtime): Promise<void> {
    const conn = await connect(taskId);
    try {
      if (conn.hello.agent !== 'idle') return;
      await sendStart(d, conn, taskId, runtime);
      await conn.waitFor((m) => m.type === 'started' || m.type === 'error', HELLO_TIMEOUT_MS);
    } finally {
      conn.close();
    }
  }

  return {
    async bootVm({ taskId, limits }) {
      const started = Date.now();
      heartbeat(`booting: ${driver.name} (${driver.acceleration})`);
      try {
        await driver.boot(
          { taskId, vcpus: limits.vcpus, memoryMib: limits.memoryMib, storageGb: limits.storageGb },
          heartbeat,
        );
      } catch (err) {
        vmFailure(err);
      }
      // Start the agent now: its first output waits in the sidecar while the workflow records the
      // task as running and schedules the pump (which starts the agent itself if this did not).
      const row = await getTask(d.pool, taskId);
      if (row) {
        heartbeat('booting: starting the agent');
        await startIfIdle(taskId, row.runtime);
      }
      return { driver: driver.name, acceleration: driver.acceleration, bootMs: Date.now() - started };
    },

    // Workflows recorded before the pump started the agent itself still schedule this.
    async startAgent({ taskId, runtime }) {
      heartbeat('starting agent: connecting to the sidecar');
      await startIfIdle(taskId, runtime);
    },

    async pumpOutput({ taskId, runtime, reportMs }) {
      return pump(d, taskId, runtime, reportMs);
    },

    async suspendVm({ taskId }) {
      const started = Date.now();
      heartbeat('suspending: writing the VM state');
      try {
        const { snapshotBytes } = await driver.suspend(taskId, heartbeat);
        return { snapshotBytes, ms: Date.now() - started };
      } catch (err) {
        vmFailure(err);
      }
    },

    async restoreVm({ taskId }) {
      const started = Date.now();
      heartbeat('restoring: loading the VM state');
      try {
        await driver.restore(taskId, heartbeat);
      } catch (err) {
        vmFailure(err);
      }
      logger.info({ taskId, ms: Date.now() - started }, 'restored');
      return { ms: Date.now() - started };
    },

    async destroyVm({ taskId }) {
      heartbeat('destroying the VM');
      await driver.destroy(taskId);
    },
  };
}

/** Hands the task's files to the sidecar, then starts the agent (the sidecar ignores a second start). */
async function sendStart(d: HostActivityDeps, conn: SidecarConnection, taskId: string, runtime: Runtime) {
  for (const f of await readTaskFiles(d.pool, taskId)) conn.send({ type: 'file', name: f.name }, f.data);
  conn.send({
    type: 'start',
    ...agentCommand(runtime, d.config, taskId, d.driver.guestEnv),
    cols: 120,
    rows: 32,
  });
}

/**
 * The output pump: sidecar → PostgreSQL (numbered chunks + NOTIFY), PostgreSQL → sidecar
 * (queued input). It resumes where the database left off, so a worker that died mid-way
 * neither loses nor doubles a byte: the sidecar keeps every chunk until we acknowledge it.
 */
async function pump(
  d: HostActivityDeps,
  taskId: string,
  runtime: Runtime,
  reportMs: number,
): Promise<AgentExit> {
  const { pool, config, logger, client, inputBus } = d;
  const ctx = Context.current();
  const conn = await SidecarConnection.open(await d.driver.connect(taskId), HELLO_TIMEOUT_MS);
  let stored = await lastSeq(pool, taskId);
  let ioSinceReport = false;
  let pending: Chunk[] = [];
  let writing: Promise<void> | undefined;
  let failed: unknown;
  let bytesSinceTrim = 0;
  let exit: AgentExit | undefined;

  const flush = async (): Promise<void> => {
    while (pending.length) {
      const batch = pending;
      pending = [];
      await appendChunks(pool, taskId, batch);
      const last = batch[batch.length - 1]!.seq;
      stored = Math.max(stored, last);
      conn.send({ type: 'ack', seq: last });
      for (const c of batch) bytesSinceTrim += c.data.length;
      if (bytesSinceTrim > config.output.retention_bytes / 8) {
        bytesSinceTrim = 0;
        await enforceRetention(pool, taskId, config.output.retention_bytes);
      }
    }
  };
  const kick = () => {
    if (writing) return;
    writing = flush()
      .catch((err) => {
        failed = err;
      })
      .finally(() => {
        writing = undefined;
        if (pending.length && !failed) kick();
      });
  };

  // Input: deliver what is queued now (e.g. typed while suspended), then on every notify —
  // but only once the agent is started: the sidecar has nowhere to put input before that.
  let agentStarted: Promise<unknown> = Promise.resolve();
  let delivering = false;
  let again = false;
  let lastInputId = 0;
  const deliver = async () => {
    if (delivering) {
      again = true;
      return;
    }
    delivering = true;
    try {
      await agentStarted;
      do {
        again = false;
        const items = await pendingInput(pool, taskId, lastInputId);
        for (const it of items) {
          if (it.kind === 'stdin') conn.send({ type: 'stdin' }, it.data);
          else conn.send({ type: 'resize', cols: it.cols, rows: it.rows });
          lastInputId = it.id;
        }
        if (items.length) {
          ioSinceReport = true;
          await consumeInput(pool, taskId, lastInputId);
          if (items.length === 500) again = true;
        }
      } while (again);
    } catch (err) {
      failed = err;
    } finally {
      delivering = false;
    }
  };
  const unsubscribe = inputBus.watch(taskId, { input: () => void deliver() });

  const summaries = new SummaryScanner();
  // The model API refusing the host's key ends the task with the reason: it cannot do anything.
  let refused: string | undefined;
  let endPump = () => {};
  const onRefused = (id: string, status: number, message: string) => {
    if (id !== taskId || refused) return;
    refused =
      `the model API refused this host's API key (HTTP ${status}: ${message}); ` +
      'the operator must fix LIA__CLAUDE__API_KEY, then start a new task';
    endPump();
  };
  d.egress?.on('model-refused', onRefused);

  const done = new Promise<void>((resolve) => {
    endPump = resolve;
    conn.onFrame(({ header, body }) => {
      const m = header as SidecarMessage;
      if (m.type === 'output') {
        if (m.seq <= stored) return;
        const summary = runtime === 'claude-headless' ? summaries.push(body) : undefined;
        if (summary)
          saveSummary(pool, taskId, summary).catch((err) =>
            logger.warn({ taskId, err: err.message }, 'could not store the run summary'),
          );
        pending.push({ seq: m.seq, data: body });
        ioSinceReport = true;
        kick();
      } else if (m.type === 'exit') {
        exit = {
          exitCode: m.code,
          signal: m.signal,
          message: m.message ?? describeAgentExit(runtime, config, m.code),
        };
        resolve();
      } else if (m.type === 'error') {
        logger.warn({ taskId, message: m.message }, 'sidecar reported an error');
      }
    });
    conn.onClose(() => resolve());
  });
  conn.send({ type: 'attach', fromSeq: stored + 1 });
  // A fresh VM's agent is started here, with the pump already listening.
  const starting = conn.hello.agent === 'idle' ? sendStart(d, conn, taskId, runtime) : Promise.resolve();
  agentStarted = starting.catch(() => {});
  void deliver();

  const onEgress = (id: string) => {
    if (id === taskId) ioSinceReport = true;
  };
  d.egress?.on('activity', onEgress);
  const report = setInterval(() => {
    // A model request in flight keeps the task awake however long the model takes.
    if (d.egress?.busy(taskId)) ioSinceReport = true;
    if (!ioSinceReport) return;
    ioSinceReport = false;
    client.workflow
      .getHandle(taskId)
      .signal(agentActivitySignal)
      .catch((err) => logger.debug({ taskId, err: err.message }, 'activity report failed'));
  }, reportMs);
  const beat = setInterval(() => ctx.heartbeat(`running: output stored up to seq ${stored}`), 1000);
  ctx.heartbeat(`running: attached from seq ${stored + 1}`);

  try {
    await starting;
    await Promise.race([done, ctx.cancelled]);
    // Whatever arrived before the end is stored before we return or give up the connection.
    while (writing || pending.length) {
      if (!writing) kick();
      await writing;
      if (failed) break;
    }
    if (failed) throw failed;
    if (refused) {
      // Said in the terminal too, after everything the agent printed (the VM goes with the task).
      await appendChunks(pool, taskId, [
        { seq: stored + 1, data: Buffer.from(`\r\n\x1b[1;31mLia: ${refused}\x1b[0m\r\n`) },
      ]);
      return { exitCode: null, signal: null, message: refused };
    }
    if (exit) return exit;
    throw ApplicationFailure.retryable('lost the connection to the sidecar', 'SidecarDisconnected');
  } catch (err) {
    if (err instanceof CancelledFailure) {
      // Cancelled (suspend, terminate): store what we have, then report the cancellation.
      await writing;
      await flush().catch(() => {});
    }
    throw err;
  } finally {
    clearInterval(report);
    clearInterval(beat);
    d.egress?.off('activity', onEgress);
    d.egress?.off('model-refused', onRefused);
    unsubscribe();
    conn.close();
  }
}
