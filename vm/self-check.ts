/**
 * A driver proves itself before its host takes tasks: one VM booted to the sidecar's hello,
 * suspended, restored, greeted again, destroyed. Whatever fails (a missing module in the image,
 * a VMM that cannot start, a sandbox or cgroup the kernel refuses, a snapshot that does not
 * load) fails here, once, with the step and the reason, instead of in a user's task.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import type { BootInfo, VmDriver } from './driver.js';
import { SidecarConnection } from './sidecar/client.js';

export interface SelfCheckReport {
  ok: boolean;
  driver: string;
  acceleration: string;
  /** The step that failed, and why. */
  failed?: { step: string; error: string };
  /** Milliseconds per step that ran. */
  ms: Partial<Record<'boot' | 'hello' | 'suspend' | 'restore' | 'destroy', number>>;
  /** How its VM started: from a template (built here if missing), or cold and why. */
  start?: BootInfo;
}

/** Self-check VMs are named so: never a task id, so the reconciler leaves them alone. */
export const SELF_CHECK_PREFIX = 'selfcheck-';

export async function selfCheck(
  driver: VmDriver,
  o: {
    memoryMib: number;
    vcpus?: number;
    storageGb?: number;
    logger?: Logger;
    progress?: (m: string) => void;
  },
): Promise<SelfCheckReport> {
  const say = o.progress ?? (() => {});
  const report: SelfCheckReport = {
    ok: false,
    driver: driver.name,
    acceleration: driver.acceleration,
    ms: {},
  };
  // What a worker killed mid-check left behind.
  for (const id of await driver.list().catch(() => [] as string[]))
    if (id.startsWith(SELF_CHECK_PREFIX)) await driver.destroy(id).catch(() => {});
  const taskId = `${SELF_CHECK_PREFIX}${randomBytes(3).toString('hex')}`;
  const step = async (name: keyof SelfCheckReport['ms'], what: string, run: () => Promise<unknown>) => {
    say(`self-check: ${what}`);
    const t = performance.now();
    try {
      await run();
    } catch (err) {
      report.failed = { step: name, error: (err as Error).message };
      throw err;
    }
    report.ms[name] = Math.round(performance.now() - t);
  };
  const hello = async () => {
    const conn = await SidecarConnection.open(await driver.connect(taskId), 15_000);
    conn.close();
  };
  try {
    await step('boot', `booting a VM (${driver.name}, ${driver.acceleration})`, async () => {
      const info = await driver.boot(
        { taskId, vcpus: o.vcpus ?? 1, memoryMib: o.memoryMib, storageGb: o.storageGb ?? 2 },
        say,
      );
      if (info) report.start = info;
    });
    await step('hello', "the sidecar's hello", hello);
    await step('suspend', 'suspending it', () => driver.suspend(taskId, say));
    await step('restore', 'restoring it', async () => {
      await driver.restore(taskId, say);
      await hello();
    });
    report.ok = true;
  } catch {
    // In the report.
  } finally {
    const t = performance.now();
    try {
      await driver.destroy(taskId);
      report.ms.destroy = Math.round(performance.now() - t);
    } catch (err) {
      if (report.ok) {
        report.ok = false;
        report.failed = { step: 'destroy', error: (err as Error).message };
      }
    }
  }
  o.logger?.info({ ...report }, report.ok ? 'VM driver self-check passed' : 'VM driver self-check FAILED');
  return report;
}

export function describeFailure(r: SelfCheckReport): string {
  return r.failed ? `${r.driver} (${r.acceleration}): ${r.failed.step} failed: ${r.failed.error}` : 'passed';
}
