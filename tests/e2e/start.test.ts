/**
 * The README's run command: `./lia start` with nothing configured brings up its own Temporal dev
 * server and PostgreSQL, then each role in its own process (control, host, API), prints the
 * addresses; a role killed with -9 is started again and the tasks go on; Ctrl-C (SIGINT) stops
 * every process it started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isAlive } from '../../system/procs.js';
import { repoRoot, waitFor } from '../helpers/env.js';
import { StreamClient } from '../helpers/stack.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** Processes whose command line mentions `needle` (the state folder), found through /proc. */
function processesWith(needle: string): string[] {
  const found: string[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) found.push(`${p}: ${cmd.slice(0, 120)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('./lia start brings every role up in its own process, starts a killed one again, and Ctrl-C stops all of it', async () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-start-'));
  const [api, temporal, ui] = [await freePort(), await freePort(), await freePort()];
  // Only what this test sets: no database or Temporal address, so private ones come up.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LIA')));
  const child = spawn(path.join(repoRoot, 'lia'), ['start'], {
    cwd: repoRoot,
    env: {
      ...env,
      LIA__STATE__DIR: state,
      LIA__SERVER__PORT: String(api),
      LIA__TEMPORAL__PORT: String(temporal),
      LIA__TEMPORAL__UI_PORT: String(ui),
      LIA__VM__DRIVER: 'local',
      LIA__LOG__LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor('"Lia is up."', () => out.includes('Lia is up.'), 180_000, 200);
    assert.match(out, new RegExp(`API and web UI: +http://127\\.0\\.0\\.1:${api}`));
    assert.match(out, new RegExp(`UI: http://127\\.0\\.0\\.1:${ui}`), 'the Temporal UI address is printed');
    const health = await fetch(`http://127.0.0.1:${api}/healthz`);
    assert.equal(health.status, 200);
    const pids = Object.fromEntries(
      [...out.matchAll(/(\w+) \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])]),
    ) as Record<string, number>;
    assert.ok(pids.control && pids.host && pids.api, `one process per role: ${JSON.stringify(pids)}`);
    assert.equal(new Set(Object.values(pids)).size, 3, 'three processes');

    // A task, then its host role killed with -9: the supervisor starts it again; the task goes on.
    const token = fs.readFileSync(path.join(state, 'secrets', 'service-token'), 'utf8').trim();
    const rest = async (method: string, route: string, body?: unknown) => {
      const r = await fetch(`http://127.0.0.1:${api}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          'x-lia-user': 'u-start',
          'content-type': 'application/json',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await r.json()) as any;
    };
    const created = await rest('POST', '/api/v1/tasks', {
      prompt: 'p',
      runtime: 'shell',
      idleTimeoutSeconds: 600,
    });
    const taskId = created.taskId as string;
    await waitFor(
      'the task to run',
      async () => (await rest('GET', `/api/v1/tasks/${taskId}`)).status === 'running',
      60_000,
    );
    process.kill(pids.host, 'SIGKILL');
    await waitFor(
      'the host role to be started again',
      () => out.includes('host is running again'),
      60_000,
      200,
    );
    const link = await rest('GET', `/api/v1/tasks/${taskId}?link=true`);
    const stream = await StreamClient.open(
      `http://127.0.0.1:${api}`,
      taskId,
      decodeURIComponent(new URL(link.url).hash.slice('#token='.length)),
    );
    stream.type('echo "after=$((40 + 2))"\r');
    await stream.waitForText('after=42', 90_000);
    await stream.close();
    // And the API role: the supervisor starts it again; the API answers again.
    process.kill(pids.api, 'SIGKILL');
    await waitFor(
      'the API to answer again',
      async () => (await fetch(`http://127.0.0.1:${api}/healthz`).catch(() => undefined))?.status === 200,
      60_000,
      200,
    );
    assert.equal((await rest('GET', `/api/v1/tasks/${taskId}`)).status, 'running', 'the task went on');
    await rest('DELETE', `/api/v1/tasks/${taskId}`);
    // Stopped before Ctrl-C: a task's VM outlives ./lia start on purpose.
    await waitFor(
      'the task to end',
      async () => (await rest('GET', `/api/v1/tasks/${taskId}`)).status === 'terminated',
      30_000,
    );

    const ours = processesWith(state);
    assert.ok(
      ours.some((p) => p.includes('temporal')),
      `a private Temporal server runs: ${ours.join('; ')}`,
    );
    assert.ok(
      ours.some((p) => p.includes('postgres')),
      'a private PostgreSQL runs',
    );

    child.kill('SIGINT');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000)),
    ]);
    assert.equal(code, 0, `./lia start exits cleanly on Ctrl-C; it printed:\n${out.slice(-1500)}`);
    await waitFor(
      'every process it started to be gone',
      () => processesWith(state).length === 0 && Object.values(pids).every((p) => !isAlive(p)),
      15_000,
      200,
    ).catch((err) => {
      throw new Error(
        `${err.message}: left ${processesWith(state).join('; ')}; pids ${JSON.stringify(pids)} alive ${Object.values(pids).filter(isAlive)}`,
      );
    });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const p of processesWith(state)) process.kill(Number(p.split(':')[0]), 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});
