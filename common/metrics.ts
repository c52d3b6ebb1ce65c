/**
 * Lia's metrics, in Prometheus form: one registry per process, the metrics every role may
 * record, named `lia_*`. Each role serves them on /metrics (workers/metrics-server.ts), with the
 * Temporal SDK's own worker metrics appended; the gauges read from PostgreSQL at scrape time
 * (tasks by status and host, the queue, host slots) are the control role's.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

const seconds = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320];

export const metrics = {
  vmBootSeconds: new Histogram({
    name: 'lia_vm_boot_seconds',
    help: "A VM's boot, from the activity's start to the guest's sidecar answering",
    labelNames: ['driver', 'acceleration'],
    buckets: seconds,
    registers: [registry],
  }),
  vmSuspendSeconds: new Histogram({
    name: 'lia_vm_suspend_seconds',
    help: "A VM's suspend: pause, state written, VMM gone",
    labelNames: ['driver'],
    buckets: seconds,
    registers: [registry],
  }),
  vmRestoreSeconds: new Histogram({
    name: 'lia_vm_restore_seconds',
    help: "A VM's restore from its snapshot to the sidecar answering",
    labelNames: ['driver'],
    buckets: seconds,
    registers: [registry],
  }),
  firstOutputSeconds: new Histogram({
    name: 'lia_spawn_first_output_seconds',
    help: "From a task's creation to its first output stored (a spawn's wait for the agent's first byte)",
    labelNames: ['driver'],
    buckets: seconds,
    registers: [registry],
  }),
  outputBytes: new Counter({
    name: 'lia_output_bytes_total',
    help: 'Terminal output stored, bytes',
    registers: [registry],
  }),
  modelTokens: new Counter({
    name: 'lia_model_tokens_total',
    help: 'Model tokens metered by the egress proxy',
    labelNames: ['kind', 'model'],
    registers: [registry],
  }),
  modelCostUsd: new Counter({
    name: 'lia_model_cost_usd_total',
    help: 'Estimated model cost, US dollars',
    labelNames: ['model'],
    registers: [registry],
  }),
  egressRefusals: new Counter({
    name: 'lia_egress_refusals_total',
    help: 'Guest requests the egress proxy refused, by reason',
    labelNames: ['reason'],
    registers: [registry],
  }),
  queueWaitSeconds: new Histogram({
    name: 'lia_queue_wait_seconds',
    help: 'How long a placed task waited in the queue for a host with room',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  }),
  apiRequests: new Counter({
    name: 'lia_api_requests_total',
    help: 'API requests, by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  }),
  streamSockets: new Gauge({
    name: 'lia_stream_sockets',
    help: 'Open terminal WebSockets in this API process',
    registers: [registry],
  }),
  botInteractions: new Counter({
    name: 'lia_bot_interactions_total',
    help: 'Discord interactions the bot answered, by kind, name and outcome',
    labelNames: ['kind', 'name', 'outcome'],
    registers: [registry],
  }),
};
