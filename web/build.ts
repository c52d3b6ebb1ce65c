/**
 * Builds the web UI into web/dist when its sources changed since the last build (a hash of them
 * is kept next to the output), so `./lia start` and the tests always serve the current page.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;
const root = path.dirname(here);
export const WEB_DIST = path.join(here, 'dist');
/** What the page takes from the server's side (api/types.ts and what it names). */
const SHARED = ['api/types.ts', 'common/task.ts', 'common/task-id.ts', 'common/task-view.ts'];

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .sort();
}

export function webSourceHash(): string {
  const h = createHash('sha256');
  for (const f of [
    path.join(here, 'index.html'),
    path.join(here, 'vite.config.ts'),
    ...sources(path.join(here, 'src')),
    ...SHARED.map((f) => path.join(root, f)),
  ]) {
    h.update(path.relative(here, f));
    h.update(fs.readFileSync(f));
  }
  return h.digest('hex').slice(0, 16);
}

export async function ensureWebBuilt(log: (m: string) => void = () => {}): Promise<string> {
  const hash = webSourceHash();
  const stamp = path.join(WEB_DIST, '.source-hash');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash) return WEB_DIST;
  log('building the web UI (vite)…');
  const { build } = await import('vite');
  await build({ configFile: path.join(here, 'vite.config.ts'), root: here, logLevel: 'warn' });
  fs.writeFileSync(stamp, hash);
  return WEB_DIST;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await ensureWebBuilt(console.log);
}
