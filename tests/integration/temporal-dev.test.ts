/**
 * The private Temporal dev server of `./lia start`: one left running by a run that was killed is
 * stopped by the next start, and a second Lia on the same state folder is refused with the reason.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isAlive } from '../../system/procs.js';
import { ensureTemporalCli } from '../../temporal-dev/cli.js';
import { startDevServer } from '../../temporal-dev/server.js';
import { repoRoot, waitFor } from '../helpers/env.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-tdev-'));
const pidFile = path.join(stateDir, 'temporal', 'server.pid');
const serverPid = () => Number(fs.readFileSync(pidFile, 'utf8').split(' ')[0]);
const children: ChildProcess[] = [];
let leftover = 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

after(() => {
  for (const c of children) c.kill('SIGKILL');
  if (leftover && isAlive(leftover)) process.kill(leftover, 'SIGKILL');
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('a dev server left by a killed run is stopped by the next start; a live one is refused', async () => {
  const cli = await ensureTemporalCli(process.env.LIA__TEMPORAL__CLI);
  const [port, uiPort] = [await freePort(), await freePort()];
  const holder = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'tests/fixtures/hold-dev-server.ts'),
      cli,
      stateDir,
      String(port),
      String(uiPort),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(holder);
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
    holder.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  leftover = serverPid();
  assert.ok(isAlive(leftover), 'its dev server runs');

  // Its owner still runs: a second start on the same folder says why it cannot.
  await assert.rejects(
    startDevServer({ cli, stateDir, port, uiPort, namespace: 'default' }),
    /belongs to a Lia that is still running .*another LIA__STATE__DIR/,
  );

  // Killed with -9, the owner could not stop it: the next start does, then runs its own.
  await new Promise<void>((resolve) => {
    holder.once('exit', () => resolve());
    holder.kill('SIGKILL');
  });
  assert.ok(isAlive(leftover), 'the orphan still runs');
  const said: string[] = [];
  const server = await startDevServer({
    cli,
    stateDir,
    port,
    uiPort,
    namespace: 'default',
    progress: (m) => said.push(m),
  });
  try {
    assert.ok(!isAlive(leftover), 'the orphan was stopped');
    assert.match(said.join('\n'), /stopping the dev server a killed run left behind/);
    assert.notEqual(serverPid(), leftover);
  } finally {
    await server.stop();
  }
  await waitFor('the pid file to go with the server', () => !fs.existsSync(pidFile) && 'gone', 5_000);
});
