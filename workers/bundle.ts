/**
 * The workflow bundle, built once and cached by a hash of its sources: bundling takes seconds,
 * and every worker process (and test) would otherwise pay it again.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['workflows', 'common'];

function hashSources(): string {
  const h = createHash('sha256');
  for (const dir of SOURCES) {
    const files = fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true });
    for (const f of files
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .map((e) => path.join(e.parentPath, e.name))
      .sort()) {
      h.update(path.relative(root, f));
      h.update(fs.readFileSync(f));
    }
  }
  h.update(fs.readFileSync(path.join(root, 'package-lock.json')));
  return h.digest('hex').slice(0, 16);
}

export async function ensureWorkflowBundle(
  stateDir: string,
  progress: (m: string) => void = () => {},
): Promise<string> {
  const dir = path.join(stateDir, 'workflow-bundle');
  const file = path.join(dir, `agentTask-${hashSources()}.js`);
  if (fs.existsSync(file)) return file;
  progress('[workflows] bundling workflow code…');
  const started = Date.now();
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'workflows', 'index.ts'),
    logger: {
      log() {},
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error: (m: string) => progress(m),
    } as never,
  });
  fs.mkdirSync(dir, { recursive: true });
  for (const old of fs.readdirSync(dir)) fs.rmSync(path.join(dir, old), { force: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, file);
  progress(`[workflows] bundled in ${Date.now() - started} ms`);
  return file;
}
