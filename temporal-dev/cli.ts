/**
 * Finds a real Temporal CLI (it carries the dev server and the Temporal UI):
 * LIA__TEMPORAL__CLI, else `temporal` on PATH, else a cached build from the Go module proxy
 * under ~/.cache/lia/temporal-cli/<version>/, built on first use.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { goBinary, goInstall, onPath } from './go-install.js';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';

export function cacheRoot(): string {
  return process.env.LIA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'lia');
}

export async function ensureTemporalCli(
  configured: string | undefined,
  progress: (m: string) => void = (m) => process.stderr.write(`${m}\n`),
): Promise<string> {
  if (configured) {
    if (!fs.existsSync(configured)) throw new Error(`LIA__TEMPORAL__CLI=${configured}: no such file`);
    return configured;
  }
  const found = onPath('temporal');
  if (found) return found;
  const dir = path.join(cacheRoot(), 'temporal-cli', TEMPORAL_CLI_VERSION);
  const bin = path.join(dir, 'temporal');
  if (fs.existsSync(bin)) return bin;
  if (!goBinary()) {
    throw new Error(
      'No Temporal CLI found: set LIA__TEMPORAL__CLI to a `temporal` binary, put one on PATH, ' +
        'or install Go so Lia can build it (go install ' +
        `${MODULE}@${TEMPORAL_CLI_VERSION}).`,
    );
  }
  progress(
    `[temporal] building the Temporal CLI ${TEMPORAL_CLI_VERSION} from the Go module proxy (first run only, a few minutes)…`,
  );
  await goInstall('the Temporal CLI', MODULE, TEMPORAL_CLI_VERSION, dir, progress);
  return bin;
}
