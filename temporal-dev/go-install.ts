/** Builds a Go program from the Go module proxy into the cache (`go install`), with progress. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

export function goBinary(): string | undefined {
  return onPath('go') ?? (fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/**
 * `go install <pkg>@<version>` into `dir` (atomically: a build cut short leaves nothing there),
 * printing a progress line every 15 s. `what` names it in those lines.
 */
export async function goInstall(
  what: string,
  pkg: string,
  version: string,
  dir: string,
  progress: (m: string) => void,
): Promise<void> {
  const go = goBinary();
  if (!go)
    throw new Error(
      `building ${what} needs Go (go install ${pkg}@${version}); install Go, or provide the binary`,
    );
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const started = Date.now();
  const tmp = `${dir}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `${pkg}@${version}`], {
      env: { ...process.env, GOBIN: tmp, CGO_ENABLED: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let downloads = 0;
    let tail = '';
    const tick = setInterval(
      () =>
        progress(
          `[temporal] still building ${what}… ${Math.round((Date.now() - started) / 1000)} s, ${downloads} modules fetched`,
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
      else reject(new Error(`building ${what} failed (go install exited ${code}):\n${tail}`));
    });
  });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(tmp)) fs.renameSync(path.join(tmp, f), path.join(dir, f));
  fs.rmSync(tmp, { recursive: true, force: true });
  progress(`[temporal] built ${what} in ${Math.round((Date.now() - started) / 1000)} s → ${dir}`);
}
