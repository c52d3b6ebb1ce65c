/**
 * The Discord bot through the real discord.js client, against a Discord stand-in on loopback that
 * speaks Discord's gateway and REST protocols and refuses what Discord refuses (3 s first
 * response, 15-minute tokens, callback types, content limits, permissions, locked threads, rate
 * limits), with the real Temporal server, PostgreSQL and the local driver behind it. Every
 * command, its refusals, buttons, thread input, a bot restart; and what Discord does to a bot:
 * commands from threads, forum posts and DMs, a failed answer, a long restore, threads deleted or
 * locked, a storm of 429s and 5xx. After each test, the stand-in must have refused nothing the
 * test did not expect.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type APIMessage, PermissionFlagsBits } from 'discord-api-types/v10';
import { type Bot, startBot } from '../../bot/client.js';
import { deployCommands } from '../../bot/deploy-commands.js';
import { discordTiming } from '../../bot/discord-rules.js';
import { createTask } from '../../common/db/tasks.js';
import { newTaskId } from '../../common/ids.js';
import { createLogger } from '../../common/logger.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';
import {
  DiscordStandIn,
  FAULTS,
  type InteractionRecord,
  snowflake,
  TOKEN_LIFETIME_MS,
} from '../standins/discord/standin.js';

const discord = new DiscordStandIn();
const adminRole = snowflake();
let s: TestStack;
let bot: Bot | undefined;
const timing = discordTiming();
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
    timing,
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
    LIA__DISCORD__SPAWN_GUILDS: discord.guildId,
    LIA__DISCORD__TAIL_SECONDS: '0.5',
    LIA__QUOTA__LIVE_TASKS_PER_USER: '3',
    LIA__QUOTA__RUNNING_TASKS_PER_USER: '3',
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
// Discord refuses what the stand-in refuses: a test that expects a refusal takes it itself.
afterEach(() => {
  discord.clearInjections();
  assert.deepEqual(discord.takeRefusals(), [], 'requests Discord would have refused');
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
/** Stops a task and waits until it has ended (so it no longer counts toward the quota). */
const stopTask = async (taskId: string, user = alice) => {
  await s.tasks.stop({ userId: user.user.id, admin: false }, taskId).catch(() => {});
  await waitFor(
    `${taskId} ended`,
    async () => /terminated|failed/.test(String((await s.tasks.peek(taskId))?.status)),
    20_000,
    100,
  );
};
const taskCount = async (user = alice) => (await s.tasks.list({ userId: user.user.id, admin: false })).length;
const requestsTo = (path: string, since = 0) =>
  discord.requests.filter((r) => r.route.startsWith(path) && r.at >= since).length;

async function spawn(
  user = alice,
  prompt = 'a shell for the bot test',
  where?: string,
): Promise<{ taskId: string; i: InteractionRecord }> {
  const i = discord.slash(user, 'spawn', { prompt, runtime: 'shell' }, where);
  const text = await answered(i, /Task \*\*t_/);
  return { taskId: taskIdIn(text)!, i };
}

describe('the Discord bot', () => {
  test('deploy-commands registers all six commands, for servers only', async () => {
    const n = await deployCommands({
      token: discord.token,
      applicationId: discord.applicationId,
      guildId: discord.guildId,
      apiUrl: discord.apiUrl,
    });
    assert.equal(n, 6);
    assert.match(discord.deployedCommands!.route, new RegExp(`/guilds/${discord.guildId}/commands$`));
    const body = discord.deployedCommands!.body as {
      name: string;
      contexts: number[];
      integration_types: number[];
    }[];
    assert.deepEqual(body.map((c) => c.name).sort(), [
      'list',
      'resume',
      'spawn',
      'spawn-file',
      'status',
      'stop',
    ]);
    for (const c of body) {
      assert.deepEqual(c.contexts, [0], `/${c.name} is offered in servers only, not in DMs`);
      assert.deepEqual(c.integration_types, [0], `/${c.name} comes with the server install only`);
    }
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
    assert.equal(thread.parent_id, discord.channelId);
    assert.match(original.content, new RegExp(`<#${thread.id}>`), 'the answer says where the thread is');
    await threadSays(thread.id, /\*\*running\*\*/, 'saying the task runs');

    discord.say(alice, thread.id, 'echo from-thread-$((6*7))');
    await threadSays(thread.id, /from-thread-42/, 'with the output of the typed command');
    for (const m of discord.messages.get(thread.id) ?? [])
      assert.equal((m.content.match(/```/g) ?? []).length % 2, 0, 'code blocks are whole');

    // Someone else's message is refused, not typed.
    discord.say(bob, thread.id, 'echo intruder-$((1+1))');
    await threadSays(thread.id, /belongs to another user/, 'refusing bob');

    // Idle → suspended; the owner writes → resumed, and the message arrives after the restore.
    await threadSays(thread.id, /\*\*suspended\*\*/, 'saying the task is suspended', 40_000);
    discord.say(alice, thread.id, 'echo after-resume-$((40+2))');
    await threadSays(thread.id, /Resuming the task/, 'saying it resumes');
    await threadSays(thread.id, /after-resume-42/, 'with the output of the message sent while suspended');
    assert.ok(!(discord.messages.get(thread.id) ?? []).some((m) => /intruder-2/.test(m.content)));
    await stopTask(taskId);
  });

  test('/spawn in a thread or a forum post opens the task a thread beside it; elsewhere it is refused before anything starts', async () => {
    // In a thread of the text channel: the task's thread goes in that channel (a thread holds no threads).
    const chat = discord.addThread(discord.channelId, 'a discussion', alice);
    const inThread = await spawn(alice, 'spawned inside a thread', chat.id);
    const thread = await threadOf(inThread.taskId);
    assert.equal(thread.parent_id, discord.channelId);
    assert.match(inThread.i.visibleText(), new RegExp(`<#${thread.id}>`));
    await threadSays(thread.id, /\*\*running\*\*/, 'saying the task from a thread runs');

    // In a forum post: the task gets a post of its own in that forum, its intro as the first message.
    const post = discord.addThread(discord.forumId, 'a question', alice);
    const inForum = await spawn(alice, 'spawned inside a forum post', post.id);
    const forumThread = await threadOf(inForum.taskId);
    assert.equal(forumThread.parent_id, discord.forumId);
    await threadSays(
      forumThread.id,
      new RegExp(`Task \\*\\*${inForum.taskId}\\*\\* by <@${alice.user.id}>`),
      'the intro',
    );
    await stopTask(inThread.taskId);
    await stopTask(inForum.taskId);

    const before = await taskCount();
    await answered(
      discord.slash(alice, 'spawn', { prompt: 'in a voice chat', runtime: 'shell' }, discord.voiceId),
      /none can be opened here/,
    );
    await answered(
      discord.slash(alice, 'spawn', { prompt: 'in a DM', runtime: 'shell' }, 'dm'),
      /in a server only/,
    );
    // Without the permission to open threads there, the bot says which one it lacks.
    discord.denyBot(discord.channelId, PermissionFlagsBits.CreatePublicThreads);
    try {
      await answered(
        discord.slash(alice, 'spawn', { prompt: 'no thread permission', runtime: 'shell' }),
        /needs the Create Public Threads permission/,
      );
    } finally {
      discord.allowBot(discord.channelId);
    }
    assert.equal(await taskCount(), before, 'no task was started where it could not get a thread');
  });

  test('/status, /list and autocomplete show the owner their own tasks, within Discord limits; others are refused', async () => {
    const { taskId } = await spawn(alice, `a long prompt ${'x'.repeat(150)}`);
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

    // Thirty tasks with long prompts: Discord takes 25 choices of at most 100 characters.
    const carol = discord.addUser('carol');
    for (let n = 0; n < 30; n++)
      await createTask(
        s.pool,
        {
          id: newTaskId(),
          owner: carol.user.id,
          runtime: 'shell',
          size: { vcpus: 1, memoryMib: 256, storageGb: 1 },
          promptFirstLine: `task ${n} ${'y'.repeat(150)}`,
          files: [],
        },
        { live: 1000, running: 1000, total: 1000 },
      );
    const many = await discord
      .autocomplete(carol, 'status', 'task_id', '')
      .until('choices', (r) => r.responses[0]?.data?.choices as { name: string }[] | undefined);
    assert.equal(many.length, 25);

    await answered(discord.slash(alice, 'list'), new RegExp(taskId));
    await answered(discord.slash(bob, 'list'), /no tasks|Your tasks/);
    await stopTask(taskId);
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

  test('/resume whose restore outlasts the interaction token answers in the channel, mentioning the user', async () => {
    const { taskId } = await spawn();
    await waitFor(`${taskId} suspended`, async () => (await status(taskId)) === 'suspended', 40_000, 200);
    // Discord's 15 minutes, shortened on both sides; a restore held up by a host worker that is down.
    discord.tokenLifetimeMs = 8000;
    timing.tokenMs = 8000;
    try {
      await s.killHostWorker();
      const i = discord.slash(alice, 'resume', { task_id: taskId });
      await answered(i, /taking longer than Discord keeps this answer open/);
      await waitFor('the interaction token to expire', () => i.expired, 10_000);
      await s.startHostWorker();
      const late = await discord.waitForMessage(
        discord.channelId,
        (m) => m.content.startsWith(`<@${alice.user.id}> /resume:`),
        'with the late answer',
        60_000,
      );
      assert.match(late.content, new RegExp(`\\*\\*${taskId}\\*\\* is running`));
      assert.equal(late.components?.length ?? 0, 0, 'no signed link in a message everyone sees');
    } finally {
      discord.tokenLifetimeMs = TOKEN_LIFETIME_MS;
      timing.tokenMs = discordTiming().tokenMs;
      const host = s.hostWorker();
      if (host.exitCode !== null || host.signalCode !== null) await s.startHostWorker();
    }
    await stopTask(taskId);
  });

  test('an answer Discord fails after the task was created: the user is told the task exists and where', async () => {
    // Discord's edit endpoint fails four times (discord.js retries a 5xx three times): the answer,
    // then the plain one goes through.
    discord.inject({
      method: 'PATCH',
      route: /^\/webhooks\/\d+\/[^/]+\/messages\/@original$/,
      fault: FAULTS.serverError(502),
      times: 4,
    });
    const i = discord.slash(alice, 'spawn', { prompt: 'the answer fails', runtime: 'shell' });
    const text = await answered(i, /was created and is starting/);
    assert.doesNotMatch(text, /Something went wrong/);
    const taskId = taskIdIn(text)!;
    const thread = await threadOf(taskId);
    assert.match(text, new RegExp(`<#${thread.id}>`));
    await stopTask(taskId);

    // The interaction out of reach for good: the user hears it in the task's thread.
    discord.inject({ route: /^\/webhooks\//, fault: FAULTS.serverError(503), forMs: 30_000 });
    const lost = discord.slash(alice, 'spawn', { prompt: 'no answer at all', runtime: 'shell' });
    await lost.until('the deferral', (r) => r.responses.length > 0);
    const told = await waitFor(
      'a thread telling alice',
      () =>
        discord.threads
          .flatMap((t) => discord.messages.get(t.id) ?? [])
          .find((m) => m.content.startsWith(`<@${alice.user.id}> your task`)),
      30_000,
    );
    assert.match(told.content, /is starting, but Discord did not let me answer your \/spawn/);
    discord.clearInjections();
    await stopTask(taskIdIn(told.content)!);
  });

  test('a deleted or locked thread is dropped at once; one that refuses posts, after its first refusal', async () => {
    const records = new ThreadRecords(s.pool);
    const typeInto = (taskId: string, text: string) =>
      s.tasks.input({ userId: alice.user.id, admin: false }, taskId, Buffer.from(`${text}\r`));

    const deleted = await spawn(alice, 'its thread will be deleted');
    const t1 = await threadOf(deleted.taskId);
    await threadSays(t1.id, /\*\*running\*\*/, 'running');
    // Archived (by Discord after a day without messages, say): a post reopens it.
    discord.archiveThread(t1.id);
    await typeInto(deleted.taskId, 'echo archived-$((2*3))');
    await threadSays(t1.id, /archived-6/, 'with output posted to the archived thread');
    assert.equal(discord.channel(t1.id)?.thread_metadata?.archived, false);
    discord.deleteThread(t1.id);
    await waitFor('the record dropped', async () => !(await records.ofTask(deleted.taskId)), 10_000);
    const since = performance.now();
    for (let n = 0; n < 3; n++) {
      await typeInto(deleted.taskId, `echo more-output-${n}`);
      await new Promise((r) => setTimeout(r, 700));
    }
    assert.equal(requestsTo(`/channels/${t1.id}`, since), 0, 'nothing sent to a deleted thread');

    const locked = await spawn(alice, 'its thread will be locked');
    const t2 = await threadOf(locked.taskId);
    await threadSays(t2.id, /\*\*running\*\*/, 'running');
    const sinceLock = performance.now();
    discord.lockThread(t2.id);
    await waitFor('the record dropped', async () => !(await records.ofTask(locked.taskId)), 10_000);
    await typeInto(locked.taskId, 'echo after-lock');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(requestsTo(`/channels/${t2.id}`, sinceLock), 0, 'nothing sent to a locked thread');

    // The bot loses its permission in the thread (no gateway event says so): one 403, then silence.
    const closed = await spawn(alice, 'its thread will refuse posts');
    const t3 = await threadOf(closed.taskId);
    await threadSays(t3.id, /\*\*running\*\*/, 'running');
    discord.inject({
      route: new RegExp(`^/channels/${t3.id}/messages$`),
      fault: FAULTS.missingPermissions(),
      forMs: 60_000,
    });
    for (let n = 0; n < 4; n++) {
      await typeInto(closed.taskId, `echo refused-${n}`);
      await new Promise((r) => setTimeout(r, 700));
    }
    await waitFor('the record dropped', async () => !(await records.ofTask(closed.taskId)), 10_000);
    await stopTask(closed.taskId);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      discord.injected.filter((f) => f.route === `/channels/${t3.id}/messages`).length,
      1,
      'one refused post',
    );
    await stopTask(deleted.taskId);
    await stopTask(locked.taskId);
  });

  test('a storm of 429s and 5xx on thread posts: every wait respected, no retry loop, the last output still posted', async () => {
    const { taskId } = await spawn(alice, 'a storm of refusals');
    const thread = await threadOf(taskId);
    await threadSays(thread.id, /\*\*running\*\*/, 'running');
    const route = new RegExp(`^/channels/${thread.id}/messages$`);
    // Two per-route 429s, a global one, then Discord's own failures for 12 s.
    discord.inject({ route, fault: FAULTS.rateLimit(1), times: 2 });
    discord.inject({ route, fault: FAULTS.globalRateLimit(1), times: 1 });
    discord.inject({ route, fault: FAULTS.serverError(502), forMs: 12_000 });
    const start = performance.now();
    const limited = () => discord.injected.filter((f) => f.status === 429).length;
    const limitedBefore = limited();
    discord.say(alice, thread.id, 'for i in $(seq 1 20); do echo storm-$i; sleep 0.1; done');
    await threadSays(thread.id, /storm-20\n/, 'with the last line of the output', 45_000);
    const posts = requestsTo(`/channels/${thread.id}/messages`, start);
    // Every attempt is discord.js's request and its three retries of a 5xx; a pause that doubles
    // between attempts keeps them to a handful over the 15 s (one per output event would be ~100).
    assert.ok(posts <= 30, `${posts} posts to the thread during the storm`);
    assert.equal(
      limited() - limitedBefore,
      3,
      'the storm happened (a request before its Retry-After would be a refusal)',
    );
    await stopTask(taskId);
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
    await stopTask(taskId);

    const big = discord.addAttachment('big.txt', Buffer.alloc(11 * 1024 * 1024, 97), 'text/plain');
    await answered(
      discord.slash(alice, 'spawn-file', { prompt: 'p', file: { attachment: big } }),
      /limit is 10 MiB/,
    );
    // Discord's attachment URLs are signed and expire: a download that fails says so.
    const expired = discord.addAttachment('old.txt', Buffer.from('x'), 'text/plain', { expired: true });
    await answered(
      discord.slash(alice, 'spawn-file', { prompt: 'p', file: { attachment: expired } }),
      /Could not download old\.txt \(HTTP 404\)/,
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
    for (const id of ids) await stopTask(id, bob);
  });

  test('a bot restart between /spawn and a button press: the old buttons still work', async () => {
    const { taskId, i } = await spawn();
    const thread = await threadOf(taskId);
    await threadSays(thread.id, /\*\*running\*\*/, 'running');
    await bot!.stop();
    bot = undefined;
    await startTheBot();
    await waitFor('the new bot on the gateway', () => discord.gatewayConnections === 1, 10_000);

    // Only alice sees her ephemeral answer, so only she can press its buttons.
    assert.throws(
      () => discord.press(bob, i.original as APIMessage, `lia:stop:${taskId}`),
      /only to its user/,
    );
    await answered(discord.press(alice, i.original as APIMessage, `lia:stop:${taskId}`), /Stopping/);
    await threadSays(thread.id, /\*\*terminated\*\*/, 'saying the task ended (posted by the new bot)');
  });

  test("every interaction was answered within Discord's 3 s", () => {
    assert.ok(discord.interactions.length >= 25, `${discord.interactions.length} interactions`);
    for (const i of discord.interactions)
      assert.ok(
        i.firstResponseMs !== undefined,
        `interaction ${JSON.stringify(i.payload.data)} was never answered`,
      );
    assert.ok(discord.maxAckMs() < 3000, `slowest first response ${discord.maxAckMs().toFixed(0)} ms`);
  });
});
