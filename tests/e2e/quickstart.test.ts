/**
 * The README's quick start, followed as written: its commands are read out of README.md (so a
 * README that drifts from what works fails here), `./lia start` runs on a fresh state folder
 * with nothing configured but free ports, and each later command runs in a terminal of its own
 * with no CLI settings at all — the address, the service token and the user come from the same
 * defaults a new user has.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CTRL_BRACKET, cliEnv, normalizeLineEnds, PtyRun } from '../helpers/cli.js';
import { repoRoot, waitFor } from '../helpers/env.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** Processes whose command line mentions `needle`, through /proc. */
function pidsWith(needle: string): number[] {
  return fs.readdirSync('/proc').flatMap((p) => {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) return [];
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle) ? [Number(p)] : [];
    } catch {
      return []; // gone meanwhile
    }
  });
}

/** The `./lia …` lines of the README's first section's code blocks, without their comments. */
function quickStart(): { commands: string[]; section: string } {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.split(/\n## /)[1] ?? '';
  const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.startsWith('./lia '));
  return { commands, section };
}

test("the README's quick start works as written: start, spawn, attach, stop", async (t) => {
  const { commands, section } = quickStart();
  assert.equal(commands[0], './lia start', "the quick start's first command starts Lia");
  assert.ok(commands.length >= 3, `the quick start shows how to run a task: ${JSON.stringify(commands)}`);

  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-quickstart-'));
  // Free ports and a state folder of its own, so it runs beside anything else; nothing more.
  // The driver is the one a fresh clone gets: auto.
  const env = cliEnv({
    LIA__STATE__DIR: state,
    LIA__SERVER__PORT: String(await freePort()),
    LIA__TEMPORAL__PORT: String(await freePort()),
    LIA__TEMPORAL__UI_PORT: String(await freePort()),
    LIA__LOG__LEVEL: 'warn',
  });
  const lia = spawn(path.join(repoRoot, 'lia'), ['start'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let banner = '';
  lia.stdout.on('data', (d) => (banner += d));
  lia.stderr.on('data', (d) => (banner += d));
  const stopped = new Promise<number | null>((r) => lia.on('exit', (code) => r(code)));
  const runs: PtyRun[] = [];
  try {
    const began = Date.now();
    await waitFor('"Lia is up."', () => banner.includes('Lia is up.'), 600_000, 200);
    t.diagnostic(`./lia start: up in ${Date.now() - began} ms; ${/VM driver: +(.*)/.exec(banner)?.[1]}`);
    // Its banner ends with the line to try, the README's own commands.
    const tryLine = banner.slice(banner.indexOf('Lia is up.')).trimEnd().split('\n').at(-1)!;
    const [spawnCmd, attachCmd] = commands.slice(1, 3);
    assert.equal(tryLine, `Try it, in another terminal:  ${spawnCmd}   then   ${attachCmd}`);

    let id: string | undefined;
    for (const command of commands.slice(1)) {
      const line = id ? command.replaceAll('<id>', id) : command;
      assert.ok(!line.includes('<id>'), `${command}: no task id yet (the spawn comes first)`);
      const run = new PtyRun(['-c', line], env, { file: '/bin/bash' });
      runs.push(run);
      const [, sub] = line.split(/\s+/);
      const ran = Date.now();
      if (sub === 'spawn') {
        assert.equal(await run.exit(30_000), 0, run.text);
        id = /^Task (t_[a-z2-7]{10}) created/.exec(run.text)?.[1];
        assert.ok(id, `the spawn printed a task id: ${run.text}`);
      } else if (sub === 'attach') {
        // What the README tells the reader to type, and the prompt it was spawned with.
        assert.match(section, /type `cat PROMPT\.md`/);
        await run.waitFor(`[lia] attached to ${id} `, 30_000);
        await run.waitFor(/\$ $/, 120_000);
        t.diagnostic(`${line}: the shell's prompt after ${Date.now() - ran} ms`);
        run.type('cat PROMPT.md\r');
        await run.waitFor(/cat PROMPT\.md\r?\r\n[^\n]*hello/, 30_000);
        run.type(CTRL_BRACKET);
        assert.equal(await run.exit(), 0, run.text);
        assert.match(normalizeLineEnds(run.text), new RegExp(`\\[lia\\] detached; ${id} keeps running`));
      } else if (sub === 'stop') {
        assert.equal(await run.exit(60_000), 0, run.text);
        assert.equal(normalizeLineEnds(run.text), `${id}: terminated\n`);
      } else
        assert.fail(
          `the quick start shows "${command}", which this test does not know how to check: add it here`,
        );
    }
    assert.ok(id, 'the quick start spawned a task');

    lia.kill('SIGINT');
    const code = await Promise.race([
      stopped,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000)),
    ]);
    assert.equal(code, 0, `./lia start exits cleanly on Ctrl-C; it printed:\n${banner.slice(-1500)}`);
  } finally {
    for (const r of runs) r.kill();
    if (lia.exitCode === null) {
      lia.kill('SIGINT');
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 30_000))]);
    }
    if (lia.exitCode === null) lia.kill('SIGKILL');
    // Whatever a failed run left (the dev server, PostgreSQL, a task's VM) names the state folder.
    for (const pid of pidsWith(state)) process.kill(pid, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});
