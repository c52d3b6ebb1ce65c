/**
 * `./lia test`: the whole test suite against real parts. Brings up a real Temporal dev server
 * (through @temporalio/testing, pointed at the cached Temporal CLI) and a private PostgreSQL,
 * builds what the tests run (workflow bundle, sidecar), then runs node's test runner over
 * tests/{unit,integration,e2e}/*.test.ts (or the files given as arguments) with their addresses in the environment.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { LIA_SEARCH_ATTRIBUTE_KEYS } from '../common/search-attributes.js';
import { createDatabase, ensurePrivateCluster } from '../postgres-dev/cluster.js';
import { ensureTemporalCli } from '../temporal-dev/cli.js';
import { ensureSidecarBuilt } from '../vm/sidecar/build.js';
import { ensureWorkflowBundle } from '../workers/bundle.js';

const say = (m: string) => process.stderr.write(`${m}\n`);
const hasQemu = () =>
  spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' }).status === 0;
const root = path.resolve(import.meta.dirname, '..');
const stateDir = path.resolve(process.env.LIA_TEST_STATE_DIR ?? path.join(root, '.lia-state', 'test'));
fs.mkdirSync(stateDir, { recursive: true });

const started = Date.now();
const cli = await ensureTemporalCli(process.env.LIA__TEMPORAL__CLI, say);
say('[test] starting a Temporal dev server through @temporalio/testing…');
const env = await TestWorkflowEnvironment.createLocal({
  server: {
    executable: { type: 'existing-path', path: cli },
    searchAttributes: LIA_SEARCH_ATTRIBUTE_KEYS,
    ip: '127.0.0.1',
    ui: false,
  },
});
const temporalAddress = env.address;
let databaseUrl = process.env.LIA__DATABASE__URL;
let stopDb = async () => {};

// Stopped by a signal (Ctrl-C, `timeout`, a CI runner giving up): the tests get the signal, and
// the dev server and the database this run started are stopped, not left behind.
let child: ChildProcess | undefined;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    say(`[test] ${signal}: stopping…`);
    if (child && child.exitCode === null) child.kill(signal);
    else void cleanUp().then(() => process.exit(1));
  });
}
async function cleanUp(): Promise<void> {
  await env.teardown().catch(() => {});
  await stopDb().catch(() => {});
}
if (!databaseUrl) {
  const cluster = await ensurePrivateCluster(stateDir, say);
  databaseUrl = cluster.url;
  stopDb = cluster.stop;
}
// Each test file makes its own database from this one's cluster.
await createDatabase(databaseUrl, 'lia_test_probe');
const bundle = await ensureWorkflowBundle(stateDir, say);
await ensureSidecarBuilt();
await (await import('../web/build.js')).ensureWebBuilt(say);
if (hasQemu()) {
  // Built (or found in ~/.cache/lia) here, with progress, rather than inside a test's worker.
  const { ensureGuestImage } = await import('../vm/image/ensure.js');
  await ensureGuestImage(say);
}
say(`[test] ready in ${Date.now() - started} ms; Temporal ${temporalAddress}`);

const testTimeoutMs = Number(process.env.LIA_TEST_TIMEOUT_MS ?? 15 * 60_000);
let args = process.argv.slice(2);
// `--run <script> [args]` runs one script (a benchmark) against the same stack, outside the test runner.
const runScript = args[0] === '--run';
if (runScript) args = args.slice(1);
// Fast to slow: unit tests first, then integration (one real part at a time), then end to end.
const files = args.length
  ? args
  : ['unit', 'integration', 'e2e'].flatMap((kind) =>
      fs
        .readdirSync(path.join(root, 'tests', kind))
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => path.join('tests', kind, f)),
    );
if (files.some((f) => f.includes('temporal-postgres'))) {
  // The Temporal server for the test against PostgreSQL persistence: built once, here, with progress.
  const { ensureTemporalServer } = await import('../temporal-dev/server-postgres.js');
  await ensureTemporalServer(say);
}
child = spawn(
  process.execPath,
  runScript
    ? ['--import', 'tsx', ...args]
    : [
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=1',
        '--test-reporter=spec',
        // A handle a failed test left open must not keep the run alive, nor a stuck test hold it.
        '--test-force-exit',
        `--test-timeout=${testTimeoutMs}`,
        ...files,
      ],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      LIA_TEST_TEMPORAL_ADDRESS: temporalAddress,
      LIA_TEST_DATABASE_URL: databaseUrl,
      LIA_TEST_STATE_DIR: stateDir,
      LIA_TEST_WORKFLOW_BUNDLE: bundle,
      LIA_TEST_TEMPORAL_CLI: cli,
    },
  },
);
const code: number = await new Promise((resolve) => child?.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
await cleanUp();
process.exit(code);
