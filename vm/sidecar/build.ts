/**
 * Bundles the sidecar into one ES module (vm/sidecar/dist/sidecar.mjs) with node-pty left
 * external: the local driver runs it with this repository's node-pty, the guest image ships it
 * next to a node-pty built for the guest. Rebuilt only when its sources change.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const here = import.meta.dirname;
export const SIDECAR_BUNDLE = path.join(here, 'dist', 'sidecar.mjs');
const SOURCES = [
  path.join(here, 'sidecar.ts'),
  path.join(here, 'repo.ts'),
  path.join(here, 'diff.ts'),
  path.join(here, '..', '..', 'common', 'diff-limits.ts'),
  path.join(here, '..', 'protocol.ts'),
  path.join(here, '..', 'channel', 'mux.ts'),
  path.join(here, 'agent-endpoint.ts'),
  path.join(here, '..', 'guest', 'agent-protocol.ts'),
];

export function sidecarSourceHash(): string {
  const h = createHash('sha256');
  for (const f of SOURCES) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

export async function ensureSidecarBuilt(): Promise<string> {
  const hash = sidecarSourceHash();
  const stamp = `${SIDECAR_BUNDLE}.hash`;
  if (fs.existsSync(SIDECAR_BUNDLE) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash)
    return SIDECAR_BUNDLE;
  await build({
    entryPoints: [SOURCES[0]!],
    outfile: SIDECAR_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    external: ['node-pty'],
    logLevel: 'warning',
  });
  fs.writeFileSync(stamp, hash);
  return SIDECAR_BUNDLE;
}
