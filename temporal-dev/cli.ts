/**
 * Finds a real Temporal CLI (it carries the dev server and the Temporal UI):
 * LIA__TEMPORAL__CLI, else `temporal` on PATH, else a cached build from the Go module proxy
 * under ~/.cache/lia/temporal-cli/<version>/, built on first use.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';

export function cacheRoot(): string {
  return process.env.LIA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'lia');
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
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
  const go = onPath('go') ?? (fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new Error(
      'No Temporal CLI found: set LIA__TEMPORAL__CLI to a `temporal` binary, put one on PATH, ' +
        'or install Go so Lia can build it (go install ' +
        `${MODULE}@${TEMPORAL_CLI_VERSION}).`,
    );
  }
  fs.mkdirSync(dir, { recursive: true });
  progress(
    `[temporal] building the Temporal CLI ${TEMPORAL_CLI_VERSION} from the Go module proxy (first run only, a few minutes)…`,
  );
  const started = Date.now();
  const tmpBin = `${dir}.partial`;
  fs.rmSync(tmpBin, { recursive: true, force: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `${MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: tmpBin, CGO_ENABLED: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let downloads = 0;
    let tail = '';
    const tick = setInterval(
      () =>
        progress(
          `[temporal] still building… ${Math.round((Date.now() - started) / 1000)} s, ${downloads} modules fetched`,
        ),
      15_000,
    );
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      downloads += (s.match(/go: downloading/g) ?? []).length;
      tail = (tail + s).slice(-4000);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(tick);
      if (code === 0) resolve();
      else reject(new Error(`building the Temporal CLI failed (go install exited ${code}):\n${tail}`));
    });
  });
  fs.renameSync(path.join(tmpBin, 'temporal'), bin);
  fs.rmSync(tmpBin, { recursive: true, force: true });
  progress(`[temporal] built ${bin} in ${Math.round((Date.now() - started) / 1000)} s`);
  return bin;
}
