/**
 * A host worker: runs the VM activities of the tasks placed on this KVM host, on its own task
 * queue `lia-host-<id>`. It keeps its record in PostgreSQL fresh (placement sees live hosts by
 * their heartbeat) and reconciles: any VM whose workflow is closed is removed.
 */
import os from 'node:os';
import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createBudgetGate } from '../activities/budget-gate.js';
import { createHostActivities } from '../activities/host.js';
import type { OutputPump } from '../activities/output-pump.js';
import { PumpHandoff } from '../activities/pump-handoff.js';
import { queueWaker } from '../activities/queue.js';
import type { Config } from '../common/config.js';
import { CHANNELS } from '../common/db/channels.js';
import { type HostInfo, heartbeatHost } from '../common/db/hosts.js';
import type { Pool } from '../common/db/pool.js';
import { addUsage, taskStatus } from '../common/db/tasks.js';
import type { Logger } from '../common/logger.js';
import { metrics } from '../common/metrics.js';
import { hostQueue } from '../common/queues.js';
import { isEnded, TASK_ID_RE } from '../common/task.js';
import { TaskBus } from '../output/bus.js';
import { OutputLog } from '../output/log.js';
import { signalPids } from '../system/procs.js';
import type { VmDriver } from '../vm/driver.js';
import { costUsd } from '../vm/egress/pricing.js';
import type { EgressProxy } from '../vm/egress/proxy.js';
import type { ModelUsage } from '../vm/egress/usage-meter.js';
import { takeOverPumps } from './pump-takeover.js';
import { connectClientTemporal, connectWorkerTemporal } from './temporal-connection.js';

/** At most this many VMs removed by one reconciliation pass. */
const MAX_REMOVALS = 10;

export interface HostWorkerOptions {
  config: Config;
  pool: Pool;
  databaseUrl: string;
  temporalAddress: string;
  driver: VmDriver;
  logger: Logger;
  egress?: EgressProxy;
}

export interface HostWorker {
  worker: Worker;
  run(): Promise<void>;
  /** One reconciliation pass; returns the task ids whose leftovers were removed. */
  reconcile(): Promise<string[]>;
  shutdown(): Promise<void>;
}

export async function createHostWorker(o: HostWorkerOptions): Promise<HostWorker> {
  const { config, pool, driver, logger } = o;
  const hostId = config.host.id;
  // Spare VMs restored ahead (vm/template/) hold a VM's share of the host whether a task runs in
  // them or not: counted against its capacity.
  const spares = (driver as { poolSize?: number }).poolSize ?? 0;
  const info: HostInfo = {
    id: hostId,
    taskQueue: hostQueue(hostId),
    driver: driver.name,
    acceleration: driver.acceleration,
    maxVms: Math.max(0, config.host.max_vms - spares),
    // What the host hands out: VMs mostly wait on the model, so vCPUs are shared four to a core.
    vcpus: Math.max(0, (config.host.vcpus ?? os.cpus().length * 4) - spares * config.vm.vcpus),
    memoryMib: Math.max(
      0,
      (config.host.memory_mib ?? Math.floor((os.totalmem() / 2 ** 20) * 0.75)) -
        spares * config.vm.memory_mib,
    ),
    diskGb: config.host.disk_gb ?? null,
  };
  await heartbeatHost(pool, info);
  const beat = setInterval(() => {
    heartbeatHost(pool, info).catch((err) => logger.warn({ err: err.message }, 'host heartbeat failed'));
  }, config.host.heartbeat_seconds * 1000);

  // Tokens are counted where they pass: the egress proxy, on this host.
  const onUsage = (taskId: string, u: ModelUsage) => {
    const cost = costUsd(u.model, u);
    for (const [kind, n] of [
      ['input', u.inputTokens],
      ['output', u.outputTokens],
      ['cache_read', u.cacheReadTokens],
      ['cache_creation', u.cacheCreationTokens],
    ] as const)
      if (n) metrics.modelTokens.inc({ kind, model: u.model || 'unknown' }, n);
    metrics.modelCostUsd.inc({ model: u.model || 'unknown' }, cost);
    addUsage(pool, taskId, u, cost).catch((err) =>
      logger.warn({ taskId, err: err.message }, 'could not record token usage'),
    );
  };
  const onBudgetRefused = (taskId: string, message: string) =>
    logger.info({ taskId, message }, 'egress: a model call was refused by a token budget');
  const onRefusal = (reason: string) => metrics.egressRefusals.inc({ reason });
  o.egress?.on('usage', onUsage);
  o.egress?.on('refusal', onRefusal);
  o.egress?.on('budget-refused', onBudgetRefused);
  // And budgets are enforced there, from what was recorded.
  o.egress?.setBudgetGate(
    createBudgetGate({
      pool,
      logger,
      limits: {
        tokensPerTask: config.quota.tokens_per_task,
        tokensPerUserPerDay: config.quota.tokens_per_user_per_day,
      },
    }),
  );

  const clientConnection = await connectClientTemporal(config, o.temporalAddress);
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  // A host joined (or came back): the task at the head of the queue may fit here now.
  await queueWaker(pool, client)().catch((err) =>
    logger.warn({ err: err.message }, 'could not wake the queue'),
  );
  const inputBus = await TaskBus.start(o.databaseUrl, logger, [CHANNELS.input, CHANNELS.task, CHANNELS.diff]);
  const connection = await connectWorkerTemporal(config, o.temporalAddress);
  const handoff = new PumpHandoff<OutputPump>();
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: info.taskQueue,
    activities: createHostActivities(
      {
        driver,
        pool,
        output: new OutputLog(pool),
        config,
        logger,
        client,
        inputBus,
        egress: o.egress,
      },
      handoff,
    ),
    // Heartbeats carry cancellation back: keep them frequent so a suspend starts promptly.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    maxConcurrentActivityTaskExecutions: 1000,
  });

  /**
   * Removes what is left of ended tasks: a VM whose task the database says has ended (a
   * workflow terminated in Temporal runs no cleanup; a destroy that failed). Only on the
   * database's word — a workflow Temporal does not know (a wrong namespace) proves nothing —
   * at most MAX_REMOVALS a pass, one bad item never stopping the rest. And VMM processes whose
   * task folder is gone are killed.
   */
  async function reconcile(): Promise<string[]> {
    const removed: string[] = [];
    for (const taskId of await driver.list()) {
      if (removed.length >= MAX_REMOVALS) {
        logger.warn({ left: 'more' }, 'reconcile: removal limit for one pass reached; the rest next pass');
        break;
      }
      try {
        if (!TASK_ID_RE.test(taskId)) continue;
        const status = await taskStatus(pool, taskId);
        if (status === undefined) {
          logger.warn({ taskId }, 'reconcile: a VM whose task has no row; left alone for an operator');
          continue;
        }
        if (!isEnded(status)) continue;
        logger.warn({ taskId, status }, 'reconcile: removing the VM of an ended task');
        await driver.destroy(taskId);
        removed.push(taskId);
      } catch (err) {
        logger.warn({ taskId, err: (err as Error).message }, 'reconcile: could not check or remove this VM');
      }
    }
    for (const pid of (await driver.strays?.()) ?? []) {
      logger.warn({ pid }, 'reconcile: killing a VMM process whose task folder is gone');
      signalPids([pid], 'SIGKILL');
    }
    return removed;
  }
  const reconcileTimer = setInterval(() => {
    reconcile().catch((err) => logger.warn({ err: err.message }, 'reconcile failed'));
  }, config.host.reconcile_seconds * 1000);

  let stopped = false;
  return {
    worker,
    run: () => {
      const running = worker.run();
      // Once this worker polls: the pumps the worker before held go to it now, not in 30 s.
      void driver
        .list()
        .then((taskIds) =>
          takeOverPumps({ client, pool, logger, taskIds, identity: worker.options.identity }),
        )
        .catch((err) => logger.warn({ err: err.message }, 'pump takeover failed'));
      return running;
    },
    reconcile,
    async shutdown() {
      if (stopped) return;
      stopped = true;
      clearInterval(beat);
      clearInterval(reconcileTimer);
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await handoff.releaseAll();
      await (driver as { stopPool?: () => Promise<void> }).stopPool?.();
      await inputBus.close();
      await o.egress?.closeAll();
      o.egress?.off('usage', onUsage);
      o.egress?.off('budget-refused', onBudgetRefused);
      o.egress?.off('refusal', onRefusal);
      o.egress?.setBudgetGate(undefined);
      await clientConnection.close();
    },
  };
}
