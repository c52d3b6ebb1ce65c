/**
 * The private PostgreSQL: a cluster left running by a run that was killed is taken over and
 * stopped by the next one; a cluster whose starter still runs is shared and left alone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { ensurePrivateCluster } from '../../postgres-dev/cluster.js';
import { repoRoot, waitFor } from '../helpers/env.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-pgown-'));
const port = () => Number(fs.readFileSync(path.join(stateDir, 'postgres', 'port'), 'utf8'));
const accepts = (p: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function holder(): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'tests/fixtures/hold-cluster.ts'), stateDir],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  return child;
}

const kill9 = (c: ChildProcess) =>
  new Promise<void>((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });

after(async () => {
  // Whatever happened above, the cluster goes with the test (by its postmaster, should the
  // take-over under test be what failed).
  const pidFile = path.join(stateDir, 'postgres', 'data', 'postmaster.pid');
  const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]) : 0;
  if (pid) {
    try {
      process.kill(pid, 'SIGINT'); // fast shutdown
      await waitFor('the test cluster to stop', () => !fs.existsSync(pidFile) && 'gone', 20_000);
    } catch {}
  }
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('a running starter keeps its cluster; a killed one leaves it to the next run, which stops it', async () => {
  const first = await holder();
  assert.ok(await accepts(port()), 'the cluster is up');

  // Shared while its starter runs: our stop() leaves it alone.
  await (await ensurePrivateCluster(stateDir)).stop();
  assert.ok(await accepts(port()), 'a shared cluster is not stopped by a guest');

  // Its starter killed with -9: nothing stopped it, so the next run takes it over…
  await kill9(first);
  assert.ok(await accepts(port()), 'the orphan still runs');
  const taken = await ensurePrivateCluster(stateDir);
  // …and its stop() stops it.
  await taken.stop();
  await waitFor('the orphan to be stopped', async () => !(await accepts(port())) && 'stopped', 20_000);
});

test('the private cluster takes no TCP connection without its password, which only Lia can read', async () => {
  const cluster = await ensurePrivateCluster(stateDir);
  try {
    const withPassword = new pg.Client({ connectionString: cluster.url });
    await withPassword.connect();
    await withPassword.end();
    const u = new URL(cluster.url);
    u.password = '';
    const without = new pg.Client({ connectionString: u.toString() });
    await assert.rejects(without.connect(), /password/i);
    u.password = 'guessed';
    const wrong = new pg.Client({ connectionString: u.toString() });
    await assert.rejects(wrong.connect(), /password authentication failed/);
    const mode = fs.statSync(path.join(stateDir, 'postgres', 'password')).mode & 0o777;
    assert.equal(mode, 0o600);
  } finally {
    await cluster.stop();
  }
});
