/**
 * The Discord bot through the real discord.js client, against a Discord stand-in on loopback that
 * speaks Discord's gateway and REST protocols, with the real Temporal server, PostgreSQL and the
 * local driver behind it. Every command, its refusals, buttons, thread input, a bot restart, and
 * Discord's 3-second acknowledgement window.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { APIMessage } from 'discord-api-types/v10';
import { type Bot, startBot } from '../../bot/client.js';
import { deployCommands } from '../../bot/deploy-commands.js';
import { createLogger } from '../../common/logger.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import { DiscordStandIn, type InteractionRecord, snowflake } from '../standins/discord/standin.js';

const discord = new DiscordStandIn();
const adminRole = snowflake();
let s: TestStack;
let bot: Bot | undefined;
const alice = discord.addUser('alice');
const bob = discord.addUser('bob');
const admin = discord.addUser('admin', [adminRole]);

const startTheBot = async () => {
  bot = await startBot({
    config: s.config,
    tasks: s.tasks,
    output: s.output,
    threadRecords: new ThreadRecords(s.pool),
    logger: createLogger('bot-test', process.env.LIA_BOT_TEST_LOG ?? 'warn'),
    databaseUrl: s.vars.LIA__DATABASE__URL!,
  });
};

before(async () => {
  await discord.start();
  s = await startTestStack('bot', {
    // The bot on with the local driver: refused unless no isolation is accepted (a test host).
    LIA__VM__LOCAL_ACCEPT_NO_ISOLATION: 'true',
    LIA__DISCORD__TOKEN: discord.token,
    LIA__DISCORD__APPLICATION_ID: discord.applicationId,
    LIA__DISCORD__API_URL: discord.apiUrl,
    LIA__DISCORD__ADMIN_ROLES: adminRole,
    LIA__DISCORD__TAIL_SECONDS: '0.5',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '3',
    LIA__HOST__MAX_VMS: '50',
    // Tasks suspend after 6 s idle: thread input and /resume then meet suspended tasks for real.
    LIA__VM__IDLE_TIMEOUT_MINUTES: '0.1',
  });
  await startTheBot();
});
after(async () => {
  await bot?.stop();
  await s?.close();
  await discord.close();
});

const answered = (i: InteractionRecord, re: RegExp, what = String(re)) =>
  i.until(what, (r) => re.test(r.visibleText()) && r.visibleText());
const taskIdIn = (text: string) => /t_[a-z2-7]{10}/.exec(text)?.[0];
const threadOf = (taskId: string) =>
  waitFor(`the thread of ${taskId}`, () => discord.threads.find((t) => t.name?.startsWith(taskId)), 15_000);
const threadSays = (threadId: string, re: RegExp, what: string, timeoutMs = 30_000) =>
  discord.waitForMessage(threadId, (m) => re.test(m.content), what, timeoutMs);
const status = async (taskId: string) =>
  (await s.api('GET', `/api/v1/tasks/${taskId}`, alice.user.id)).json.status;

async function spawn(
  user = alice,
  prompt = 'a shell for the bot test',
): Promise<{ taskId: string; i: InteractionRecord }> {
  const i = discord.slash(user, 'spawn', { prompt, runtime: 'shell' });
  const text = await answered(i, /Task \*\*t_/);
  return { taskId: taskIdIn(text)!, i };
}

describe('the Discord bot', () => {
  test('deploy-commands registers all six commands in a guild', async () => {
    const n = await deployCommands({
      token: discord.token,
      applicationId: discord.applicationId,
      guildId: discord.guildId,
      apiUrl: discord.apiUrl,
    });
    assert.equal(n, 6);
    assert.match(discord.deployedCommands!.route, new RegExp(`/guilds/${discord.guildId}/commands$`));
    const names = (discord.deployedCommands!.body as { name: string }[]).map((c) => c.name).sort();
    assert.deepEqual(names, ['list', 'resume', 'spawn', 'spawn-file', 'status', 'stop']);
  });

  test('/spawn: ephemeral embed with link and buttons, a thread with state and output, thread input reaches the agent', async () => {
    const { taskId, i } = await spawn();
    assert.ok(i.ephemeral, 'the answer carries a signed link: only the owner sees it');
    const original = i.original!;
    assert.equal(original.embeds[0]?.title, `Task ${taskId}`);
    const row = original.components?.[0] as
      | { components: { url?: string; custom_id?: string }[] }
      | undefined;
    assert.ok(row, 'the answer has buttons');
    const buttons = row.components;
    assert.match(buttons[0]!.url!, new RegExp(`/tasks/${taskId}#token=`));
    assert.deepEqual(
      buttons.slice(1).map((b) => b.custom_id),
      [`lia:resume:${taskId}`, `lia:stop:${taskId}`],
    );
    const thread = await threadOf(taskId);
    await threadSays(thread.id, /\*\*running\*\*/, 'saying the task runs');

    discord.say(alice, thread.id, 'echo from-thread-$((6*7))');
    await threadSays(thread.id, /from-thread-42/, 'with the output of the typed command');
    for (const m of discord.messages.get(thread.id) ?? []) {
      assert.ok(m.content.length <= 2000);
      assert.equal((m.content.match(/```/g) ?? []).length % 2, 0, 'code blocks are whole');
    }

    // Someone else's message is refused, not typed.
    discord.say(bob, thread.id, 'echo intruder-$((1+1))');
    await threadSays(thread.id, /belongs to another user/, 'refusing bob');

    // Idle → suspended; the owner writes → resumed, and the message arrives after the restore.
    await threadSays(thread.id, /\*\*suspended\*\*/, 'saying the task is suspended', 40_000);
    discord.say(alice, thread.id, 'echo after-resume-$((40+2))');
    await threadSays(thread.id, /Resuming the task/, 'saying it resumes');
    await threadSays(thread.id, /after-resume-42/, 'with the output of the message sent while suspended');
    assert.ok(!(discord.messages.get(thread.id) ?? []).some((m) => /intruder-2/.test(m.content)));
    await s.tasks.stop({ userId: alice.user.id, admin: false }, taskId);
  });

  test('/status, /list and autocomplete show the owner their own tasks; others are refused', async () => {
    const { taskId } = await spawn();
    const st = discord.slash(alice, 'status', { task_id: taskId });
    await answered(st, /State: (starting|running|pending)/);
    assert.ok(st.ephemeral);

    const foreign = discord.slash(bob, 'status', { task_id: taskId });
    await answered(foreign, /belongs to another user/);
    assert.ok(foreign.ephemeral, 'refusals are ephemeral');
    await answered(discord.slash(admin, 'status', { task_id: taskId }), /State: /);
    await answered(discord.slash(alice, 'status', { task_id: 't_aaaaaaaaaa' }), /no task t_aaaaaaaaaa/);

    const ac = discord.autocomplete(alice, 'status', 'task_id', taskId.slice(0, 6));
    const choices = await ac.until('choices', (r) => r.responses[0]?.data?.choices as { value: string }[]);
    assert.ok(choices.some((c) => c.value === taskId));
    const bobs = await discord
      .autocomplete(bob, 'stop', 'task_id', '')
      .until('choices', (r) => r.responses[0]?.data?.choices as { value: string }[] | undefined);
    assert.ok(!bobs.some((c) => c.value === taskId), "bob is not offered alice's task");

    await answered(discord.slash(alice, 'list'), new RegExp(taskId));
    await answered(discord.slash(bob, 'list'), /no tasks|Your tasks/);
    await s.tasks.stop({ userId: alice.user.id, admin: false }, taskId);
  });

  test('/resume refuses a running task and resumes a suspended one; /stop stops', async () => {
    const { taskId } = await spawn();
    await waitFor(`${taskId} running`, async () => (await status(taskId)) === 'running', 20_000);
    await answered(
      discord.slash(alice, 'resume', { task_id: taskId }),
      /only a suspended task can be resumed/,
    );
    await waitFor(`${taskId} suspended`, async () => (await status(taskId)) === 'suspended', 40_000, 200);
    await answered(discord.slash(alice, 'resume', { task_id: taskId }), /is running/);
    await answered(discord.slash(bob, 'stop', { task_id: taskId }), /belongs to another user/);
    await answered(discord.slash(alice, 'stop', { task_id: taskId }), /Stopping/);
    await waitFor(`${taskId} terminated`, async () => (await status(taskId)) === 'terminated', 20_000);
  });

  test('/spawn-file puts the file in the working directory under a safe name; bad files are refused', async () => {
    const file = discord.addAttachment('../../notes.txt', Buffer.from('hello-from-the-file\n'), 'text/plain');
    const i = discord.slash(alice, 'spawn-file', {
      prompt: 'read the notes',
      runtime: 'shell',
      file: { attachment: file },
    });
    const taskId = taskIdIn(await answered(i, /Task \*\*t_/))!;
    const thread = await threadOf(taskId);
    await threadSays(thread.id, /\*\*running\*\*/, 'running');
    discord.say(alice, thread.id, 'ls; cat notes.txt');
    await threadSays(thread.id, /hello-from-the-file/, 'with the file content').catch(async (err) => {
      const out = await s.api('GET', `/api/v1/tasks/${taskId}/output`, alice.user.id);
      throw new Error(`${(err as Error).message}; the task's output: ${JSON.stringify(out.json.text)}`);
    });
    await s.tasks.stop({ userId: alice.user.id, admin: false }, taskId);

    const big = discord.addAttachment('big.txt', Buffer.alloc(11 * 1024 * 1024, 97), 'text/plain');
    await answered(
      discord.slash(alice, 'spawn-file', { prompt: 'p', file: { attachment: big } }),
      /limit is 10 MiB/,
    );
    const liar = {
      ...discord.addAttachment('liar.txt', Buffer.alloc(11 * 1024 * 1024, 97), 'text/plain'),
      size: 100,
    };
    await answered(
      discord.slash(alice, 'spawn-file', { prompt: 'p', file: { attachment: liar } }),
      /larger than 10 MiB/,
    );
    const exe = discord.addAttachment('tool.exe', Buffer.from('MZ'), 'application/x-msdownload');
    await answered(
      discord.slash(alice, 'spawn-file', { prompt: 'p', file: { attachment: exe } }),
      /not accepted/,
    );
  });

  test('over quota: the fourth live task is refused', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await spawn(bob, `bob ${n}`)).taskId);
    const refused = discord.slash(bob, 'spawn', { prompt: 'one too many', runtime: 'shell' });
    await answered(refused, /at most 3|quota|live tasks/i);
    for (const id of ids) await s.tasks.stop({ userId: bob.user.id, admin: false }, id);
  });

  test('a bot restart between /spawn and a button press: the old buttons still work', async () => {
    const { taskId, i } = await spawn();
    const thread = await threadOf(taskId);
    await threadSays(thread.id, /\*\*running\*\*/, 'running');
    await bot!.stop();
    bot = undefined;
    await startTheBot();
    await waitFor('the new bot on the gateway', () => discord.gatewayConnections === 1, 10_000);

    const press = discord.press(bob, i.original as APIMessage, `lia:stop:${taskId}`);
    await answered(press, /belongs to another user/);
    await answered(discord.press(alice, i.original as APIMessage, `lia:stop:${taskId}`), /Stopping/);
    await threadSays(thread.id, /\*\*terminated\*\*/, 'saying the task ended (posted by the new bot)');
  });

  test("every interaction was answered within Discord's 3 s, through routes Discord has", () => {
    assert.ok(discord.interactions.length >= 15, `${discord.interactions.length} interactions`);
    for (const i of discord.interactions)
      assert.ok(
        i.firstResponseMs !== undefined,
        `interaction ${JSON.stringify(i.payload.data)} was never answered`,
      );
    assert.ok(discord.maxAckMs() < 3000, `slowest first response ${discord.maxAckMs().toFixed(0)} ms`);
    assert.deepEqual(discord.unknownRoutes, []);
  });
});
