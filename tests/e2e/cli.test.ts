/**
 * The command line (`./lia spawn | list | status | attach | output | resume | stop`) against a
 * whole Lia with the local driver: the real `./lia` script, in a pseudo-terminal where a person
 * would use it, talking to the API over HTTP and the stream only.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../system/procs.js';
import {
  agentText,
  CTRL_BRACKET,
  cliEnv,
  count,
  LIA,
  normalizeLineEnds,
  PtyRun,
  runCli,
} from '../helpers/cli.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';

let s: TestStack;
let env: Record<string, string>;
const USER = 'u-cli';
const PROMPT_RE = /\$ $/;

before(async () => {
  // Several tasks at once per test user: the quota is not what these tests are about.
  s = await startTestStack('e2e_cli', {
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '20',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '40',
  });
  env = cliEnv({ LIA_URL: s.apiUrl, LIA_TOKEN: s.serviceToken, LIA_USER: USER });
});
after(async () => {
  await s?.close();
});

async function statusOf(taskId: string): Promise<string> {
  const res = await s.api('GET', `/api/v1/tasks/${taskId}`, USER);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json.status;
}
const waitStatus = (taskId: string, status: string, timeoutMs = 30_000) =>
  waitFor(`task ${taskId} to be ${status}`, async () => (await statusOf(taskId)) === status, timeoutMs, 100);

/** The task's whole stored log, as the API gives it. */
async function storedLog(taskId: string): Promise<string> {
  const res = await fetch(`${s.apiUrl}/api/v1/tasks/${taskId}/output?format=raw`, {
    headers: { authorization: `Bearer ${s.serviceToken}`, 'x-lia-user': USER },
  });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer()).toString('utf8');
}

/** `./lia spawn -q …` → the new task's id. */
async function spawnShell(...extra: string[]): Promise<string> {
  const r = await runCli(['spawn', '-q', '--runtime', 'shell', ...extra, 'a shell for the cli test'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^t_[a-z2-7]{10}\n$/);
  return r.stdout.trim();
}

function agentPid(taskId: string): number {
  return Number(
    fs.readFileSync(path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', taskId, 'agent.pid'), 'utf8'),
  );
}

/** Attaches in a PTY and waits for the shell's prompt after the replay. */
async function attach(taskId: string, size = { cols: 100, rows: 30 }): Promise<PtyRun> {
  const run = new PtyRun(['attach', taskId], env, size);
  await run.waitFor(`[lia] attached to ${taskId} (shell, `);
  await run.waitFor(PROMPT_RE);
  return run;
}

/** Ctrl-] and the exit it must cause, with its message. */
async function detach(run: PtyRun, taskId: string): Promise<void> {
  run.type(CTRL_BRACKET);
  assert.equal(await run.exit(), 0, run.text);
  assert.match(
    normalizeLineEnds(run.text),
    new RegExp(
      `\\n\\[lia\\] detached; ${taskId} keeps running\\. Attach again: \\./lia attach ${taskId} {2}Stop it: \\./lia stop ${taskId}\\n$`,
    ),
  );
}

describe('./lia spawn, list, status', () => {
  test('spawn prints the id and how to reach the task; list and status show it; files and idle timeout arrive', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-cli-'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'from a file\n');
    // From another folder: a relative --file is the caller's, not the repository's.
    const run = new PtyRun(
      ['spawn', '--runtime', 'shell', '--file', 'notes.txt', '--idle-timeout', '600', 'hello from the cli'],
      env,
      { cwd: dir },
    );
    assert.equal(await run.exit(), 0, run.text);
    const m = /^Task (t_[a-z2-7]{10}) created \(runtime shell\)\.\n/.exec(normalizeLineEnds(run.text));
    assert.ok(m, run.text);
    const id = m[1]!;
    const base = s.apiUrl.replace(/[.]/g, '\\.');
    assert.match(
      normalizeLineEnds(run.text),
      new RegExp(
        `^Task ${id} created \\(runtime shell\\)\\.\\n` +
          `  Watch and type in it:  \\./lia attach ${id}\\n` +
          `  In a browser:          ${base}/tasks/${id}#token=[\\w.-]+\\n` +
          `  Stop it:               \\./lia stop ${id}\\n$`,
      ),
    );
    assert.ok(!run.text.includes(s.serviceToken), 'the service token is never printed');

    const list = await runCli(['list'], env);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID +STATUS +RUNTIME +CREATED +PROMPT$/);
    assert.match(
      lines.find((l) => l.startsWith(id)) ?? '',
      new RegExp(
        `^${id} +(pending|starting|running) +shell +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +hello from the cli$`,
      ),
    );

    await waitStatus(id, 'running');
    const status = await runCli(['status', id], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      new RegExp(`^${id}\\n  status: +running \\(suspends after (9m 5\\d|10m 00)s more idle\\)\\n`),
    );
    assert.match(
      status.stdout,
      /\n {2}runtime: +shell\n {2}owner: +u-cli\n {2}prompt: +hello from the cli\n/,
    );
    assert.match(status.stdout, new RegExp(`\\n {2}host: +${s.config.host.id}, driver local \\(none\\)\\n`));
    const json = JSON.parse((await runCli(['status', '--json', id], env)).stdout);
    assert.equal(json.id, id);
    assert.equal(json.owner, USER);

    // The file and the prompt are in the shell's folder.
    const a = await attach(id);
    a.type('cat PROMPT.md; echo; cat notes.txt\r');
    await a.waitFor(/hello from the cli\r?\r\nfrom a file\r?\r\n/);
    await detach(a, id);
    assert.equal((await runCli(['stop', id], env)).code, 0);
  });
});

describe('./lia attach', () => {
  test('output arrives, input reaches the shell, the window size follows, Ctrl-] detaches and the task keeps running', async () => {
    const id = await spawnShell();
    const a = await attach(id, { cols: 100, rows: 30 });
    a.type('echo "sum=$((40 + 2))"\r');
    await a.waitFor('sum=42');
    // The size on connect, then a resize of the window (SIGWINCH), reach the task's PTY.
    a.type('stty size\r');
    await a.waitFor(/30 100\r?\r\n/);
    a.resize(120, 40);
    await new Promise((r) => setTimeout(r, 200));
    a.type('stty size\r');
    await a.waitFor(/40 120\r?\r\n.*\$ $/s);
    const pid = agentPid(id);
    await detach(a, id);

    assert.equal(await statusOf(id), 'running', 'detaching leaves the task running');
    assert.ok(isAlive(pid), 'and its shell alive');
    const first = agentText(a.text);
    assert.equal(first, normalizeLineEnds(await storedLog(id)), 'attach showed exactly the stored output');

    // Again: the whole log replayed, each byte once, then live on from there.
    const b = await attach(id);
    b.type('echo again-$((6*7))\r');
    await b.waitFor(/again-42\r?\r\n.*\$ $/s);
    await detach(b, id);
    const second = agentText(b.text);
    const log = normalizeLineEnds(await storedLog(id));
    assert.equal(second, log, 'the re-attach replayed the stored output without a gap or a repeat');
    assert.ok(second.startsWith(first), 'what the first attach showed comes first, once');
    assert.equal(count(second, 'sum=42\n'), 1);
    assert.equal(count(second, '40 120\n'), 1);
    assert.equal(count(second, 'again-42\n'), 1);
    assert.equal((await runCli(['stop', id], env)).code, 0);
  });

  test('a dropped connection reconnects from the last seq: no gap, no repeat, input stored once', async () => {
    const id = await spawnShell();
    const a = await attach(id);
    a.type('for i in $(seq 1 300); do echo line-$i; done\r');
    // Cut the stream from the server's side while that output is on its way.
    await a.waitFor('line-100\r');
    assert.ok(s.dropStreams() >= 1);
    // Typed while the connection is down or coming back: stored once, in order.
    a.type('echo once-$((6*7))\r');
    await a.waitFor('[lia] reconnected');
    await a.waitFor(/once-42\r?\r\n.*\$ $/s);
    await detach(a, id);
    const shown = agentText(a.text);
    assert.match(
      normalizeLineEnds(a.text),
      /\n\[lia\] connection lost; reconnecting, nothing will be missed…\n/,
    );
    assert.equal(shown, normalizeLineEnds(await storedLog(id)), 'no gap and no repeat across the reconnect');
    for (const i of [1, 100, 101, 300]) assert.equal(count(shown, `line-${i}\n`), 1, `line-${i} once`);
    assert.equal(count(shown, 'once-42\n'), 1, 'the input typed across the drop ran once');
    assert.equal((await runCli(['stop', id], env)).code, 0);
  });

  test('typing into a suspended task resumes it on the first keystroke', async () => {
    const id = await spawnShell('--idle-timeout', '2');
    await waitStatus(id, 'running');
    await waitStatus(id, 'suspended', 30_000);
    const a = new PtyRun(['attach', id], env);
    await a.waitFor(
      `[lia] attached to ${id} (shell, suspended: type to resume it); Ctrl-] detaches, the task keeps running`,
    );
    await a.waitFor(PROMPT_RE);
    a.type('e');
    await a.waitFor('[lia] resuming the task for your input…');
    await waitStatus(id, 'running', 30_000);
    // The first keystroke itself reached the shell (the rest of the command follows it).
    a.type('cho back-$((6*7))\r');
    await a.waitFor(/back-42\r?\r\n/);
    await a.waitFor('[lia] running again');
    await detach(a, id);
    assert.equal(count(agentText(a.text), 'back-42\n'), 1);
    assert.equal((await runCli(['stop', id], env)).code, 0);
  });
});

describe('./lia stop, output, resume', () => {
  test('stop ends the task; the attached terminal says so and leaves; output prints the stored log byte for byte', async () => {
    const id = await spawnShell();
    const a = await attach(id);
    a.type('echo bye-$((6*7))\r');
    await a.waitFor(/bye-42\r?\r\n.*\$ $/s);
    const stop = new PtyRun(['stop', id], env);
    assert.equal(await stop.exit(30_000), 0, stop.text);
    assert.equal(normalizeLineEnds(stop.text), `${id}: terminated\n`);
    assert.equal(await a.exit(), 0, a.text);
    assert.match(normalizeLineEnds(a.text), /\n\[lia\] task terminated[^\n]*\n$/);
    assert.equal(await statusOf(id), 'terminated');

    const again = await runCli(['attach', id], env);
    assert.equal(again.code, 1);
    assert.equal(
      again.stderr,
      `lia: task ${id} has terminated: there is no terminal to attach to. Its output: ./lia output ${id}\n`,
    );
    const out = await runCli(['output', id], env);
    assert.equal(out.code, 0, out.stderr);
    const res = await fetch(`${s.apiUrl}/api/v1/tasks/${id}/output?format=raw`, {
      headers: { authorization: `Bearer ${s.serviceToken}`, 'x-lia-user': USER },
    });
    assert.ok(
      out.bytes.equals(Buffer.from(await res.arrayBuffer())),
      'output is the stored log, byte for byte',
    );
    assert.equal(count(out.stdout, 'bye-42\r\n'), 1);

    const resume = await runCli(['resume', id], env);
    assert.equal(resume.code, 1);
    assert.equal(
      resume.stderr,
      `resuming ${id}…\nlia: task ${id} has terminated; it cannot be resumed\nSee its state with ./lia status ${id}.\n`,
    );
  });

  test('output --follow prints what is stored, then what comes, until the task ends', async () => {
    const id = await spawnShell();
    await waitStatus(id, 'running');
    const typist = await StreamClient.open(s.apiUrl, id, await linkToken(id), 1, 'cli-test-typist');
    await typist.waitForText('$ ');
    const child = spawn(LIA, ['output', '--follow', id], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    typist.type('echo follow-$((6*7))\r', 1);
    await waitFor(
      'follow-42 in ./lia output --follow',
      () => Buffer.concat(out).includes('follow-42\r\n'),
      20_000,
    );
    await typist.close();
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${id}`, USER)).status, 202);
    assert.equal(await exited, 0, err);
    const res = await fetch(`${s.apiUrl}/api/v1/tasks/${id}/output?format=raw`, {
      headers: { authorization: `Bearer ${s.serviceToken}`, 'x-lia-user': USER },
    });
    assert.ok(
      Buffer.concat(out).equals(Buffer.from(await res.arrayBuffer())),
      'followed output = the stored log',
    );
  });
});

describe('errors say what to do', () => {
  test('Lia not running, unknown task, not yours, malformed id, bad token, no token file, wrong state', async () => {
    const port = await freePort();
    const down = await runCli(['list'], { ...env, LIA_URL: `http://127.0.0.1:${port}` });
    assert.equal(down.code, 1);
    assert.equal(
      down.stderr,
      `lia: Lia is not running at http://127.0.0.1:${port}: start it with ./lia start (or pass --url)\n`,
    );

    const unknown = await runCli(['status', 't_aaaaaaaaaa'], env);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      `lia: no task t_aaaaaaaaaa\nSee your tasks with ./lia list (you are acting as user "u-cli" (LIA_USER), at ${s.apiUrl}).\n`,
    );

    const theirs = await s.api('POST', '/api/v1/tasks', 'u-other', { prompt: 'p', runtime: 'shell' });
    assert.equal(theirs.status, 201);
    for (const cmd of ['status', 'attach', 'stop']) {
      const r = await runCli([cmd, theirs.json.taskId], env);
      assert.equal(r.code, 1, cmd);
      assert.equal(
        r.stderr,
        `lia: task ${theirs.json.taskId} belongs to another user\n` +
          `You are acting as user "u-cli" (LIA_USER): act as the task's owner with --user <owner>, or see your own tasks with ./lia list.\n`,
        cmd,
      );
    }
    const asOwner = await runCli(['stop', '--user', 'u-other', theirs.json.taskId], env);
    assert.equal(asOwner.code, 0, asOwner.stderr);

    const malformed = await runCli(['status', 'nope'], env);
    assert.equal(malformed.code, 2);
    assert.match(
      malformed.stderr,
      /"nope" is not a task id: one looks like t_ and 10 characters of a-z and 2-7/,
    );

    const badToken = await runCli(['list'], { ...env, LIA_TOKEN: 'not-the-token' });
    assert.equal(badToken.code, 1);
    assert.match(
      badToken.stderr,
      /^lia: the link token is not valid \(forged or damaged\)\nThe API did not accept the service token\. On the machine that runs Lia/,
    );
    assert.ok(!badToken.stderr.includes('not-the-token'), 'a token is never printed');

    const running = await spawnShell();
    await waitStatus(running, 'running');
    const notSuspended = await runCli(['resume', running], env);
    assert.equal(notSuspended.code, 1);
    assert.match(notSuspended.stderr, new RegExp(`\\nSee its state with \\./lia status ${running}\\.\\n$`));
    await runCli(['stop', '--no-wait', running], env);

    // With no token given: the one `./lia start` keeps in its state folder, else how to get one.
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-cli-state-'));
    const noToken = cliEnv({ LIA_URL: s.apiUrl, LIA_USER: USER, LIA__STATE__DIR: state });
    const missing = await runCli(['list'], noToken);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `lia: no service token: ${state}/secrets/service-token does not exist. Start Lia once with ./lia start (it creates it), or, for a Lia elsewhere, set LIA_URL and LIA_TOKEN (or pass --url and --token).\n`,
    );
    fs.mkdirSync(path.join(state, 'secrets'));
    fs.writeFileSync(path.join(state, 'secrets', 'service-token'), `${s.serviceToken}\n`);
    const found = await runCli(['list'], noToken);
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /^ID +STATUS/);
    fs.rmSync(state, { recursive: true, force: true });
  });
});

/** A new link's token (it revokes the task's older links). */
async function linkToken(taskId: string): Promise<string> {
  const res = await s.api('GET', `/api/v1/tasks/${taskId}?link=true`, USER);
  return decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
