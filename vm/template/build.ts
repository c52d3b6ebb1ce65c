/**
 * A template's build, but for the driver's own steps: a VM named for the key booted to its
 * sidecar's hello and snapshotted into a temporary folder beside the templates, which is renamed
 * into place only when whole (a half-built template is never found). Whatever an earlier build
 * left of that VM goes first; whatever this one leaves goes after, built or not.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/logger.js';
import { type Progress, VmError, type VmSpec } from '../driver.js';
import { publishTemplate, TEMPLATE_FORMAT, type TemplateInputs, type TemplateMeta } from './template.js';

export interface TemplateBuild {
  root: string;
  key: string;
  inputs: TemplateInputs;
  progress: Progress;
  logger?: Logger;
  /** Said after the VM's size when the build starts. */
  about?: string;
  /** Kept in template.json beside what every template has. */
  meta?: Pick<TemplateMeta, 'base'>;
  /** Removes the build's VM. */
  destroy(id: string): Promise<void>;
  /** Boots the build's VM to its sidecar's hello; what the template keeps of it goes to `work`. */
  boot(spec: VmSpec, work: string, say: Progress): Promise<void>;
  /** Snapshots the VM into `work` and stops it; its files there are left read-only. */
  snapshot(id: string, work: string, say: Progress): Promise<void>;
  /** Said after a failure's message (what the guest printed). */
  failure?(id: string): string;
}

/** Builds the template; returns its folder and how long its VM took to boot. */
export async function buildTemplate(b: TemplateBuild): Promise<{ dir: string; bootMs: number }> {
  const { root, key, inputs } = b;
  const id = `tpl-${key.slice(0, 12)}`;
  const started = Date.now();
  const say = (m: string) => {
    const line = `[template ${key.slice(0, 8)}] ${m}`;
    b.progress(line);
    if (!m.includes('waiting for')) b.logger?.info(line);
  };
  const about = b.about ? `, ${b.about}` : '';
  say(`building: ${inputs.vcpus} vCPU, ${inputs.memoryMib} MiB, ${inputs.storageGb} GB${about}`);
  await b.destroy(id);
  const work = fs.mkdtempSync(path.join(root, `.build-${key}-`));
  try {
    const spec: VmSpec = {
      taskId: id,
      vcpus: inputs.vcpus,
      memoryMib: inputs.memoryMib,
      storageGb: inputs.storageGb,
    };
    await b.boot(spec, work, say);
    const bootMs = Date.now() - started;
    say(`sidecar answered after ${(bootMs / 1000).toFixed(1)} s: snapshotting`);
    const snapStarted = Date.now();
    await b.snapshot(id, work, say);
    // Readable by every VM's uid: they hold no secret (the image, and a guest that has run
    // nothing but its sidecar).
    fs.chmodSync(work, 0o755);
    const dir = publishTemplate(root, work, {
      key,
      inputs,
      format: TEMPLATE_FORMAT,
      builtAt: new Date().toISOString(),
      bootMs,
      snapshotMs: Date.now() - snapStarted,
      ...b.meta,
    });
    say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);
    return { dir, bootMs };
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true });
    throw new VmError(`building the template: ${(err as Error).message}${b.failure?.(id) ?? ''}`);
  } finally {
    await b.destroy(id).catch(() => {});
  }
}
