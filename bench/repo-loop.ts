/**
 * The coding loop's round trips with a real QEMU guest and the real git in it (issue 20):
 *   - a task's diff through Lia (GET /diff: PostgreSQL → the host's pump → the sidecar → git in
 *     the guest under TCG → back) against the same git commands run on the host on the same tree
 *     (the bare cost of git), for a small change and for a change of 300 files;
 *   - Open pull request (commit, push through the proxy, the diff for the stat, the PR on the
 *     forge stand-in) for the first time and again (an update).
 *
 * Run: ./lia bench bench/repo-loop.ts [rounds]   (default 10)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StreamClient, startTestStack } from '../tests/helpers/stack.js';
import { forgeEnv, startForgeStandin } from '../tests/standins/forge/forge-standin.js';

const rounds = Number(process.argv[2] ?? 10);
const OWNER = 'bench-user';
const TOKEN = 'ghs_BenchRepoLoopHostOnly0123456789';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const line = (what: string, xs: number[]) =>
  console.log(
    `${what.padEnd(46)} p50 ${pct(xs, 50).toFixed(0).padStart(6)} ms   p95 ${pct(xs, 95).toFixed(0).padStart(6)} ms`,
  );

const files: Record<string, string> = { 'README.md': '# widgets\n' };
for (let i = 0; i < 40; i++) files[`src/m${i}.ts`] = `export const v${i} = ${i};\n`.repeat(50);
const forge = await startForgeStandin({ [TOKEN]: { repos: '*', write: true, login: 'lia-app' } });
forge.createRepo('acme', 'widgets', files);
const s = await startTestStack('bench_repo_loop', {
  LIA__LOG__LEVEL: 'error',
  LIA__VM__DRIVER: 'qemu',
  ...forgeEnv(forge, TOKEN, 'acme/widgets'),
});
const res = await s.api('POST', '/api/v1/tasks', OWNER, {
  prompt: 'bench',
  runtime: 'shell',
  repo: 'acme/widgets',
  idleTimeoutSeconds: 3600,
});
if (res.status !== 201) throw new Error(JSON.stringify(res.json));
const taskId: string = res.json.taskId;
const c = await StreamClient.open(s.apiUrl, taskId, decodeURIComponent(new URL(res.json.url).hash.slice(7)));
await c.waitForText('checked out on', 600_000);

// The same tree on the host, for git's bare cost.
const host = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-bench-repo-'));
const git = (...args: string[]) => spawnSync('git', args, { cwd: host, env: { ...process.env, HOME: host } });
spawnSync('git', ['clone', '-q', `${forge.root}/acme/widgets.git`, host]);
git('checkout', '-qb', 'lia/bench');
const base = git('rev-parse', 'HEAD').stdout.toString().trim();
const bareDiff = () => {
  const t0 = performance.now();
  const env = { ...process.env, HOME: host, GIT_INDEX_FILE: path.join(host, '.git', 'scratch-index') };
  for (const args of [
    ['read-tree', 'HEAD'],
    ['add', '-A'],
    ['diff', '--cached', '--numstat', '-z', '-M', base],
    ['diff', '--cached', '-M', base],
  ])
    spawnSync('git', args, { cwd: host, env });
  return performance.now() - t0;
};
const liaDiff = async () => {
  const t0 = performance.now();
  const r = await s.api('GET', `/api/v1/tasks/${taskId}/diff`, OWNER);
  if (r.status !== 200 || !r.json.fresh) throw new Error(JSON.stringify(r.json).slice(0, 300));
  return { ms: performance.now() - t0, files: r.json.stat.files as number };
};

async function measure(label: string, expectFiles: number) {
  const lia: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const d = await liaDiff();
    if (d.files !== expectFiles) throw new Error(`${label}: ${d.files} files, expected ${expectFiles}`);
    lia.push(d.ms);
    bare.push(bareDiff());
  }
  line(`diff, ${label}: Lia (guest git, TCG)`, lia);
  line(`diff, ${label}: git on the host (bare)`, bare);
}

console.log(
  `repo-loop bench: ${rounds} rounds, QEMU ${(await s.api('GET', `/api/v1/tasks/${taskId}`, OWNER)).json.acceleration}`,
);
// A small change: one file edited, one added.
c.type("echo more >> README.md; printf 'export const x = 1;\\n' > src/new.ts; echo ready=$((1+1))\r");
await c.waitForText('ready=2', 60_000);
fs.appendFileSync(path.join(host, 'README.md'), 'more\n');
fs.writeFileSync(path.join(host, 'src/new.ts'), 'export const x = 1;\n');
await measure('2 files', 2);

// A large one: 300 files more.
c.type('mkdir -p gen && for i in $(seq 1 300); do echo "line $i" > gen/f$i.txt; done; echo ready=$((2+1))\r');
await c.waitForText('ready=3', 120_000);
fs.mkdirSync(path.join(host, 'gen'));
for (let i = 1; i <= 300; i++) fs.writeFileSync(path.join(host, 'gen', `f${i}.txt`), `line ${i}\n`);
await measure('302 files', 302);

const pr: number[] = [];
for (let i = 0; i < Math.min(rounds, 5); i++) {
  c.type(`echo round-${i} >> README.md; echo edited=${i}x\r`);
  await c.waitForText(`edited=${i}x`, 60_000);
  const t0 = performance.now();
  const r = await s.api('POST', `/api/v1/tasks/${taskId}/pull-request`, OWNER);
  if (r.status !== 200) throw new Error(JSON.stringify(r.json).slice(0, 300));
  pr.push(performance.now() - t0);
  if (i === 0)
    console.log(`${'open pull request, first (created)'.padEnd(46)} ${pr[0]!.toFixed(0).padStart(10)} ms`);
}
line('open pull request again (commit, push, update)', pr.slice(1));
await c.close();
await s.api('DELETE', `/api/v1/tasks/${taskId}`, OWNER);
await s.close();
await forge.close();
fs.rmSync(host, { recursive: true, force: true });
process.exit(0);
