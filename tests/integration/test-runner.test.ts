/**
 * The README's test command, stopped by a signal in the middle of a run (`timeout`, a CI runner
 * giving up): the tests stop, and so do the Temporal dev server and the PostgreSQL it started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { descendantPids, isAlive } from '../../system/procs.js';
import { repoRoot, waitFor } from '../helpers/env.js';

test('./lia test stopped by SIGTERM leaves no process behind', async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-runner-'));
  // Nothing of this run's own stack: the inner run brings up its own.
  // (NODE_TEST_CONTEXT would make the inner test runner think it is nested, and run nothing.)
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('LIA') && k !== 'NODE_TEST_CONTEXT'),
  );
  const child = spawn(path.join(repoRoot, 'lia'), ['test', 'tests/fixtures/a-test-that-waits.ts'], {
    cwd: repoRoot,
    env: { ...env, LIA_TEST_STATE_DIR: state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const postmaster = path.join(state, 'postgres', 'data', 'postmaster.pid');
  let started: number[] = [];
  let postgres: number | undefined;
  try {
    await waitFor('the inner run to be ready', () => out.includes('[test] ready'), 300_000, 200);
    await new Promise((r) => setTimeout(r, 1000)); // the waiting test is under way
    started = descendantPids(child.pid!);
    postgres = Number(fs.readFileSync(postmaster, 'utf8').split('\n')[0]);
    assert.ok(postgres && isAlive(postgres), `its PostgreSQL runs; it printed:\n${out.slice(-800)}`);
    assert.ok(started.length >= 2, 'the Temporal dev server and the tests run under it');

    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000)),
    ]);
    assert.notEqual(code, 'hung', `./lia test stops on SIGTERM; it printed:\n${out.slice(-800)}`);
    assert.match(out, /SIGTERM: stopping/);
    await waitFor(
      'every process of the run to be gone',
      () => started.every((p) => !isAlive(p)) && !isAlive(postgres!) && 'gone',
      30_000,
      200,
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const p of [...started, postgres ?? 0]) if (p && isAlive(p)) process.kill(p, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});
