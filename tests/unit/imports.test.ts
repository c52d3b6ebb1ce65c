/**
 * The house rules of DESIGN.md's folder table, checked over the source: which folder may import
 * which, workflows free of I/O, no import circles. A new import that breaks one fails here with
 * the file and the line to fix.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Folder → the project folders it may import (besides itself). `*` = any (composition roots). */
const MAY_IMPORT: Record<string, string[] | '*'> = {
  common: [],
  system: [],
  // The dev server registers Lia's search attributes (common/search-attributes.ts).
  'temporal-dev': ['common', 'system'],
  'postgres-dev': ['system'],
  output: ['common'],
  workflows: ['common'],
  vm: ['common', 'system'],
  tasks: ['common', 'output', 'workflows'],
  activities: ['common', 'output', 'vm', 'system', 'workflows'],
  // A process per role: workers/roles/ compose the others (the API and the bot included).
  workers: [
    'common',
    'output',
    'vm',
    'system',
    'activities',
    'workflows',
    'tasks',
    'api',
    'bot',
    'web',
    'temporal-dev',
    'postgres-dev',
  ],
  api: ['common', 'tasks', 'output'],
  bot: ['common', 'tasks', 'output'],
  web: ['api', 'common'],
  // The command line: Lia over HTTP/WS only; the API's types and common/'s pure modules.
  cli: ['api', 'common'],
  scripts: '*',
  bench: '*',
  tests: '*',
};

/** What a workflow may import: deterministic, I/O-free modules only. */
const WORKFLOW_PACKAGES = new Set(['@temporalio/workflow', '@temporalio/common', 'zod']);
const WORKFLOW_COMMON = new Set([
  'common/task.ts',
  'common/conversation.ts',
  'common/permission-policy.ts',
  'common/task-id.ts',
  'common/activities.ts',
  'common/queues.ts',
  'common/search-attributes.ts',
]);
/** Of workflows/, the message definitions are what other folders may name (never the workflow's code, but as a type). */
const WORKFLOW_DEFINITIONS = 'workflows/definitions.ts';

interface Import {
  from: string;
  line: number;
  spec: string;
  target?: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (['node_modules', 'dist', 'histories', 'fixtures'].includes(e.name)) continue;
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|tsx)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.normalize(path.join(path.dirname(from), spec)).replace(/\.(js|ts|tsx)$/, '');
  for (const ext of ['.ts', '.tsx', '/index.ts'])
    if (fs.existsSync(path.join(root, base + ext))) return base + ext;
  return base;
}

function importsOf(file: string): Import[] {
  const src = fs.readFileSync(path.join(root, file), 'utf8');
  const out: Import[] = [];
  // The names between `import`/`export` and `from` are identifiers, braces, commas, `*`, `as`,
  // `type`: nothing that could run on into the next statement (an interface's body).
  const re =
    /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[\w\s{},*$]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of src.matchAll(re)) {
    const spec = m[3] ?? m[4]!;
    const line = src.slice(0, m.index).split('\n').length + (m[0].startsWith('\n') ? 1 : 0);
    out.push({ from: file, line, spec, target: resolve(file, spec), typeOnly: !!m[2] });
  }
  return out;
}

const folders = Object.keys(MAY_IMPORT).filter((f) => fs.existsSync(path.join(root, f)));
const files = folders.flatMap(sourceFiles);
const all = files.flatMap(importsOf);
const top = (p: string) => p.split(path.sep)[0]!;
const where = (i: Import) => `${i.from}:${i.line} imports ${i.spec}`;

test('every folder imports only what DESIGN.md allows it', () => {
  const bad: string[] = [];
  for (const i of all) {
    if (!i.target) continue;
    const [a, b] = [top(i.from), top(i.target)];
    const allowed = MAY_IMPORT[a];
    if (a === b || allowed === '*') continue;
    if (!allowed?.includes(b)) bad.push(`${where(i)}: ${a}/ may not import ${b}/`);
    // Outside workers/ (which registers the workflow), only the message definitions, or a type.
    else if (b === 'workflows' && a !== 'workers' && i.target !== WORKFLOW_DEFINITIONS && !i.typeOnly)
      bad.push(`${where(i)}: import ${WORKFLOW_DEFINITIONS} (or a type), not workflow code`);
  }
  assert.deepEqual(bad, []);
});

test('api/ and bot/ go through tasks/ and output/: never the database, a VM or an activity', () => {
  const bad = all.filter(
    (i) =>
      ['api', 'bot'].includes(top(i.from)) &&
      i.target &&
      /^(common\/db|vm|activities|workers|workflows)\//.test(i.target),
  );
  assert.deepEqual(bad.map(where), []);
});

/** The API's client-facing half: what it sends (types) and the stream protocol's client side. */
const API_CLIENT_SIDE = 'api/stream-session.ts';

test('cli/ reaches Lia over HTTP and WebSocket only: api/types.ts as types and the stream client half, never the API or the database', () => {
  const bad = all.filter(
    (i) =>
      top(i.from) === 'cli' &&
      i.target &&
      ((top(i.target) === 'api' &&
        i.target !== API_CLIENT_SIDE &&
        (i.target !== 'api/types.ts' || !i.typeOnly)) ||
        i.target.startsWith('common/db/')),
  );
  assert.deepEqual(bad.map(where), []);
});

test('the stream client half runs in a browser: it imports only api/types.ts, as types', () => {
  const bad = all.filter((i) => i.from === API_CLIENT_SIDE && (i.target !== 'api/types.ts' || !i.typeOnly));
  assert.deepEqual(bad.map(where), []);
});

test('workflows/ import nothing with I/O', () => {
  const bad = all.filter((i) => {
    if (top(i.from) !== 'workflows') return false;
    if (!i.target) return !WORKFLOW_PACKAGES.has(i.spec);
    return top(i.target) !== 'workflows' && !WORKFLOW_COMMON.has(i.target);
  });
  assert.deepEqual(bad.map(where), []);
});

test('no import circles', () => {
  const edges = new Map<string, string[]>();
  for (const i of all) if (i.target) edges.set(i.from, [...(edges.get(i.from) ?? []), i.target]);
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...trail.slice(trail.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const t of edges.get(f) ?? []) visit(t, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(circles, []);
});

test('the check sees the imports it checks (a broken scan would pass everything)', () => {
  assert.ok(files.length > 80, `only ${files.length} source files found`);
  assert.ok(all.some((i) => i.from === 'api/app.ts' && i.target === 'tasks/service.ts'));
  assert.ok(all.some((i) => i.from === 'workflows/agentTask.ts' && i.spec === '@temporalio/workflow'));
});
