/**
 * A role's /metrics: Lia's registry (common/metrics.ts), its process metrics, and the Temporal
 * SDK's worker metrics (its runtime exports them on a loopback port of their own; they are
 * appended here so one scrape per process gets everything).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { registry } from '../common/metrics.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

let defaults = false;

export async function serveMetrics(o: {
  host: string;
  port: number;
  role: string;
  logger: Logger;
  /** Where the Temporal SDK's runtime serves its own metrics, when it does. */
  sdkMetricsUrl?: string;
}): Promise<MetricsServer> {
  registry.setDefaultLabels({ role: o.role });
  if (!defaults) {
    collectDefaultMetrics({ register: registry, prefix: 'lia_process_' });
    defaults = true;
  }
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('metrics are at /metrics\n');
      return;
    }
    try {
      let text = await registry.metrics();
      if (o.sdkMetricsUrl) {
        const sdk = await fetch(o.sdkMetricsUrl, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.text(),
          () => '',
        );
        if (sdk) text += `\n# Temporal SDK (worker) metrics\n${sdk}`;
      }
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    } catch (err) {
      o.logger.warn({ err: (err as Error).message }, 'metrics: could not collect');
      res.writeHead(500).end('could not collect the metrics; see the log\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  o.logger.info({ port, role: o.role }, 'metrics served on /metrics');
  return { port, close: () => new Promise((r) => server.close(() => r())) };
}
