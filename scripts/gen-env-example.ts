/** Writes .env.example from the config schema (`--check` fails when it is out of date). */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_VARS, envName } from '../common/config.js';

export function renderEnvExample(): string {
  const lines = [
    '# Lia configuration: every variable with its default. Copy to .env (or export) and change what you need.',
    '# Generated from common/config.ts by scripts/gen-env-example.ts; do not edit by hand.',
    '',
  ];
  for (const [section, vars] of Object.entries(CONFIG_VARS)) {
    lines.push(`# --- ${section} ---`);
    for (const [key, v] of Object.entries(
      vars as Record<string, { default?: string; doc: string; secret?: boolean }>,
    )) {
      lines.push(`# ${v.doc}${v.secret ? ' (secret)' : ''}`);
      lines.push(`${v.default === undefined ? '# ' : ''}${envName(section, key)}=${v.default ?? ''}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = path.resolve(import.meta.dirname, '..', '.env.example');
  const want = renderEnvExample();
  if (process.argv.includes('--check')) {
    if (fs.readFileSync(file, 'utf8') !== want) {
      process.stderr.write('.env.example is out of date: run node --import tsx scripts/gen-env-example.ts\n');
      process.exit(1);
    }
  } else {
    fs.writeFileSync(file, want);
  }
}
