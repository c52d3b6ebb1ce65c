/**
 * The real Claude Code CLI on the host, the version the guest image pins (vm/image/base.ts):
 * its native binary package from npm (`@anthropic-ai/claude-code-linux-x64`, a Bun binary of
 * about 190 MB), installed once into ~/.cache/lia/claude-code/<version>/ and reused. An install
 * goes to a temporary folder first and is renamed into place, so a killed run leaves nothing half
 * done; progress is printed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLAUDE_CODE_VERSION } from '../../vm/image/base.js';

const PACKAGE = '@anthropic-ai/claude-code-linux-x64';

export function claudeCliDir(version = CLAUDE_CODE_VERSION): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'lia', 'claude-code', version);
}

function binaryIn(dir: string): string {
  return path.join(dir, 'node_modules', ...PACKAGE.split('/'), 'claude');
}

/** The path of the `claude` binary, installing it first if need be. */
export async function ensureClaudeCli(version = CLAUDE_CODE_VERSION): Promise<string> {
  const dir = claudeCliDir(version);
  const bin = binaryIn(dir);
  if (fs.existsSync(bin)) return bin;
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const say = (m: string) => process.stderr.write(`[claude-code] ${m}\n`);
  say(`installing ${PACKAGE}@${version} (about 190 MB) into ${dir}…`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const npm = spawn(
      'npm',
      [
        'install',
        '--prefix',
        tmp,
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--os=linux',
        '--cpu=x64',
        '--libc=glibc',
        '--loglevel=http',
        `${PACKAGE}@${version}`,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    npm.on('error', reject);
    npm.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm install exited with ${code}`))));
  });
  if (!fs.existsSync(binaryIn(tmp)))
    throw new Error(`the package installed, but ${binaryIn(tmp)} is missing`);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    fs.renameSync(tmp, dir);
  } catch (err) {
    // Another run got there first: use its copy.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(bin)) throw err;
  }
  say(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return bin;
}
