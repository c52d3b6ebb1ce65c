/**
 * The real Claude Code CLI in a real VM (qemu; TCG here), against a model-API stand-in reached
 * only through the host's egress proxy: a headless run spawned from Discord (through the Discord
 * stand-in and the real discord.js) whose tool call writes a file in the guest, its summary in the
 * task's thread, tokens counted by the host; an interactive run in the terminal; the key in no
 * guest file or snapshot; and a host key the model API refuses, which fails the task with the
 * reason instead of hanging.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Bot, startBot } from '../../bot/client.js';
import { createLogger } from '../../common/logger.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { costUsd } from '../../vm/egress/pricing.js';
import { waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';
import { DiscordStandIn } from '../standins/discord/standin.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const API_KEY = `sk-ant-lia-test-${randomBytes(16).toString('hex')}`;
// As the real API: prompt caching reported, answers compressed with what the client accepts.
const model = new ModelStandIn(
  API_KEY,
  {
    name: 'Bash',
    input: { command: 'echo lia-tool-ran-$((6*7)) > tool-output.txt', description: 'Write the file' },
  },
  undefined,
  { caching: true, compression: 'auto', pings: true },
);
const discord = new DiscordStandIn();
const alice = discord.addUser('alice');
let s: TestStack;
let bot: Bot;

before(async () => {
  await model.start();
  await discord.start();
  s = await startTestStack('e2e_claude', {
    LIA__VM__DRIVER: 'qemu',
    LIA__VM__MEMORY_MIB: '1024',
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    LIA__VM__IDLE_TIMEOUT_MINUTES: '0.5',
    LIA__CLAUDE__API_KEY: API_KEY,
    LIA__CLAUDE__BASE_URL: model.url,
    LIA__DISCORD__TOKEN: discord.token,
    LIA__DISCORD__APPLICATION_ID: discord.applicationId,
    LIA__DISCORD__API_URL: discord.apiUrl,
    LIA__DISCORD__SPAWN_GUILDS: discord.guildId,
    LIA__DISCORD__TAIL_SECONDS: '1',
  });
  bot = await startBot({
    config: s.config,
    tasks: s.tasks,
    output: s.output,
    threadRecords: new ThreadRecords(s.pool),
    logger: createLogger('bot', 'warn'),
    databaseUrl: s.vars.LIA__DATABASE__URL!,
  });
});
after(async () => {
  await bot?.stop();
  await s?.close();
  await discord.close();
  await model.close();
});

const owner = alice.user.id;
const task = async (id: string) => (await s.api('GET', `/api/v1/tasks/${id}`, owner)).json;
const waitStatus = (id: string, want: string, timeoutMs = 300_000) =>
  waitFor(`task ${id} to be ${want}`, async () => (await task(id)).status === want, timeoutMs, 250);
const vmDir = (id: string) => path.join(s.stateDir, 'hosts', s.config.host.id, 'vms', id);
const tokenOf = (url: string) => decodeURIComponent(new URL(url).hash.slice('#token='.length));

// The Discord stand-in refuses what Discord would: none of it may happen here.
afterEach(() => assert.deepEqual(discord.takeRefusals(), [], 'requests Discord would have refused'));

describe('Claude Code in the VM', () => {
  test('headless from Discord: the tool call runs in the guest, the summary reaches the thread, tokens are counted', async () => {
    const i = discord.slash(alice, 'spawn', {
      prompt: 'Write the file, please.',
      runtime: 'claude-headless',
      // No questions: the tool runs as it did before permission modes (conversation.test.ts asks).
      permission_mode: 'auto',
    });
    const text = await i.until(
      'the spawn answer',
      (r) => /Task \*\*t_/.test(r.visibleText()) && r.visibleText(),
    );
    const taskId = /t_[a-z2-7]{10}/.exec(text)![0];
    const row = i.original?.components?.[0] as { components: { url?: string }[] } | undefined;
    const link = row!.components[0]!.url!;
    const thread = await waitFor(
      'the thread',
      () => discord.threads.find((t) => t.name?.startsWith(taskId)),
      15_000,
    );

    const summary = await discord.waitForMessage(
      thread.id,
      // Its owner is mentioned: the run is done (notify-when-done).
      (m) => m.content.startsWith(`<@${owner}> **Claude Code finished**`),
      'with the run summary',
      300_000,
    );
    assert.match(summary.content, /after \d+ turns/);
    assert.match(summary.content, /> Done: the file is written\./);
    assert.match(
      summary.content,
      /tokens: [\d,]+ in \([\d,]+ uncached · [\d,]+ cache read · [\d,]+ cache write\) · [\d,]+ out/,
    );

    const kinds = model.requests.map((r) => r.kind);
    assert.ok(kinds.includes('tool_call') && kinds.includes('final'), JSON.stringify(model.requests));
    assert.ok(
      model.requests.every((r) => r.key === API_KEY),
      'every request reached the model API with the host key',
    );

    // The web terminal: the rendered run; between turns, a line starting with ! runs in a shell.
    const c = await StreamClient.open(s.apiUrl, taskId, tokenOf(link));
    await c.waitForText('turn 1 finished', 60_000);
    assert.match(c.text(), /⚙ Bash/);
    c.type('!cat tool-output.txt\r');
    await c.waitForText('lia-tool-ran-42', 60_000);
    assert.ok(
      terminalLines(c.text()).includes('lia-tool-ran-42'),
      'the tool ran in the guest (the guest computed 42)',
    );
    await c.close();

    // The host counted, to the token, what the model API (the stand-in) reported for every
    // answer it served — uncached input, cache reads and writes, output — and priced it.
    const served = model.served();
    const cost = model.requests.reduce(
      (sum, r) =>
        r.usage
          ? sum +
            costUsd(r.model ?? '', {
              inputTokens: r.usage.input,
              outputTokens: r.usage.output,
              cacheReadTokens: r.usage.cacheRead,
              cacheCreationTokens: r.usage.cacheCreation,
            })
          : sum,
      0,
    );
    assert.ok(served.cacheRead > 0 && served.cacheCreation > 0, JSON.stringify(served));
    assert.ok(
      model.requests.some((r) => r.encoding !== 'identity'),
      'answers were compressed',
    );
    const t = await waitFor(
      'the tokens of every answer',
      async () => {
        const v = await task(taskId);
        return v.usage.outputTokens === served.output && v;
      },
      15_000,
    );
    assert.deepEqual(
      {
        input: t.usage.inputTokens,
        output: t.usage.outputTokens,
        cacheRead: t.usage.cacheReadTokens,
        cacheCreation: t.usage.cacheCreationTokens,
      },
      served,
    );
    assert.ok(Math.abs(t.usage.costUsd - cost) < 1e-5, `cost ${t.usage.costUsd} vs ${cost}`);
    assert.equal(t.summary.result, 'Done: the file is written.');
    const total = (served.input + served.cacheRead + served.cacheCreation).toLocaleString('en-US');
    const st = discord.slash(alice, 'status', { task_id: taskId });
    await st.until('tokens in /status', (r) =>
      r
        .visibleText()
        .includes(
          `${total} in (${served.input.toLocaleString('en-US')} uncached · ${served.cacheRead.toLocaleString('en-US')} cache read · ${served.cacheCreation.toLocaleString('en-US')} cache write) · ${served.output.toLocaleString('en-US')} out`,
        ),
    );

    // Idle → suspended: the key is in neither the disk nor the machine state.
    await waitStatus(taskId, 'suspended', 180_000);
    const snapshot = fs.readFileSync(path.join(vmDir(taskId), 'state.bin'));
    assert.ok(snapshot.length > 10 * 1024 * 1024);
    assert.equal(snapshot.indexOf(API_KEY), -1, 'the API key is not in the snapshot');
    assert.equal(
      fs.readFileSync(path.join(vmDir(taskId), 'disk.qcow2')).indexOf(API_KEY),
      -1,
      'nor on the disk',
    );
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner)).status, 202);
    await waitStatus(taskId, 'terminated');
  });

  test('interactive: Claude Code runs in the terminal and answers the prompt', async () => {
    const before = model.requests.length;
    const res = await s.api('POST', '/api/v1/tasks', owner, {
      prompt: 'Write the file, please.',
      runtime: 'claude',
      permissionMode: 'auto',
    });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const taskId = res.json.taskId as string;
    await waitStatus(taskId, 'running');
    const c = await StreamClient.open(s.apiUrl, taskId, tokenOf(res.json.url));
    // The interactive UI moves the cursor instead of printing spaces: compare without either.
    const squeezed = () => terminalLines(c.text()).join('').replace(/\s+/g, '');
    await waitFor(
      'the answer in the terminal',
      () => squeezed().includes('Done:thefileiswritten.'),
      300_000,
      200,
    );
    assert.ok(squeezed().includes('ClaudeCode'), 'the Claude Code UI is in the terminal');
    assert.ok(model.requests.slice(before).some((r) => r.kind === 'final'));
    await c.close();
    await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner);
    await waitStatus(taskId, 'terminated');
  });

  test('a host key the model API refuses: the task fails with the reason, in the terminal and its status', async () => {
    model.key = 'sk-ant-some-other-key';
    const res = await s.api('POST', '/api/v1/tasks', owner, {
      prompt: 'Anything.',
      runtime: 'claude-headless',
    });
    assert.equal(res.status, 201);
    const taskId = res.json.taskId as string;
    await waitStatus(taskId, 'failed');
    const t = await task(taskId);
    assert.match(t.error, /refused this host's API key \(HTTP 401: invalid x-api-key\)/);
    assert.match(t.error, /LIA__CLAUDE__API_KEY/);
    const out = await s.api('GET', `/api/v1/tasks/${taskId}/output`, owner);
    assert.match(out.json.text, /Lia: the model API refused this host's API key/);
    assert.equal(fs.existsSync(vmDir(taskId)), false, 'the VM is cleaned up');
    const st = discord.slash(alice, 'status', { task_id: taskId });
    await st.until('the reason in /status', (r) => /refused this host's API key/.test(r.visibleText()));
  });
});
