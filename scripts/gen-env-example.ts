/**
 * Writes .env.example and the README's configuration table from the config schema (`--check`
 * fails when either is out of date), so a variable is documented where it is defined.
 */
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

const START = /<!-- config:start[^>]*-->\n/;
const END = '<!-- config:end -->';

/** The README's table of every variable, its default and its meaning. */
export function renderReadmeTable(): string {
  const rows: string[][] = [['variable', 'default', 'meaning']];
  for (const [section, vars] of Object.entries(CONFIG_VARS)) {
    for (const [key, v] of Object.entries(vars as Record<string, { default?: string; doc: string }>)) {
      const shown = v.default === undefined ? 'unset' : v.default === '' ? 'empty' : `\`${v.default}\``;
      rows.push([`\`${envName(section, key)}\``, shown, v.doc.replace(/\|/g, '\\|')]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** The README with its configuration table brought up to date. */
export function renderReadme(readme: string): string {
  const start = START.exec(readme);
  const end = readme.indexOf(END);
  if (!start || end < 0)
    throw new Error('README.md has no <!-- config:start --> … <!-- config:end --> markers');
  return `${readme.slice(0, start.index + start[0].length)}${renderReadmeTable()}\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.resolve(import.meta.dirname, '..');
  const files = [
    [path.join(root, '.env.example'), () => renderEnvExample()],
    [path.join(root, 'README.md'), (old: string) => renderReadme(old)],
  ] as const;
  for (const [file, render] of files) {
    const old = fs.readFileSync(file, 'utf8');
    const want = render(old);
    if (!process.argv.includes('--check')) fs.writeFileSync(file, want);
    else if (old !== want) {
      process.stderr.write(
        `${path.basename(file)} is out of date: run node --import tsx scripts/gen-env-example.ts\n`,
      );
      process.exit(1);
    }
  }
}
