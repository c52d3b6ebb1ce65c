/**
 * The agent as a conversation in Discord (issue 17), end to end: the real discord.js bot against
 * the Discord stand-in, the real Claude Code CLI in a qemu guest against the model-API stand-in,
 * which asks for tools the way the real API does (tests/standins/model/tool-script.ts).
 *
 * One headless task in mode `ask`, spawned with /spawn: a question with buttons in the thread; a
 * non-owner's click refused; Allow → the command ran in the guest; Deny → it did not, and the
 * agent says so; a follow-up in the thread → the second turn of the same session (it remembers
 * the first); Always allow → the next use asks nothing; an Edit question left waiting past the
 * idle timeout → the VM suspends (no QEMU) → Allow → it resumes and the edit is made; the history
 * shows the question and the answer. A second task: a question nobody answers is denied past its
 * limit, and the agent told.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { APIMessage } from 'discord.js';
import { type Bot, startBot } from '../../bot/client.js';
import { createLogger } from '../../common/logger.js';
import { isAlive } from '../../system/procs.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { launchBrowser, waitForScreen } from '../helpers/browser.js';
import { repoRoot, waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack, terminalLines } from '../helpers/stack.js';
import { threadHtml } from '../helpers/thread-render.js';
import { DiscordStandIn } from '../standins/discord/standin.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const API_KEY = `sk-ant-lia-test-${randomBytes(16).toString('hex')}`;
const model = new ModelStandIn(API_KEY, 'script');
const discord = new DiscordStandIn();
const alice = discord.addUser('alice');
const bob = discord.addUser('bob');
let s: TestStack;
let bot: Bot;

before(async () => {
  await model.start();
  await discord.start();
  s = await startTestStack('e2e_conversation', {
    LIA__VM__DRIVER: 'qemu',
    LIA__VM__MEMORY_MIB: '1024',
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    // Long enough for Claude Code to start under software emulation on a loaded machine (a task
    // quiet that long before its first question is suspended, and nothing would resume it), short
    // enough for step 5 to see a waiting question let the task suspend.
    LIA__VM__IDLE_TIMEOUT_MINUTES: '1',
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

afterEach(() => assert.deepEqual(discord.takeRefusals(), [], 'requests Discord would have refused'));

const owner = alice.user.id;
const task = async (id: string) => (await s.api('GET', `/api/v1/tasks/${id}`, owner)).json;
const waitStatus = (id: string, want: string, timeoutMs = 300_000) =>
  waitFor(`task ${id} to be ${want}`, async () => (await task(id)).status === want, timeoutMs, 250);
const qemuRunning = (taskId: string) =>
  fs.readdirSync('/proc').some((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes('qemu-system') && cmd.includes(`lia-${taskId}`) && isAlive(Number(p));
    } catch {
      return false;
    }
  });

type Row = { components: { custom_id?: string; label?: string }[] };
const buttons = (m: APIMessage) => ((m.components ?? []) as unknown as Row[]).flatMap((r) => r.components);
const button = (m: APIMessage, label: RegExp) => {
  const b = buttons(m).find((x) => label.test(x.label ?? ''));
  assert.ok(b?.custom_id, `a button ${label} on ${JSON.stringify(m.components)}`);
  return b.custom_id;
};
const messagesIn = (threadId: string) =>
  (discord as unknown as { messages: Map<string, APIMessage[]> }).messages.get(threadId) ?? [];
/** The n-th question message (1-based) in the thread that still has its buttons. */
const waitQuestion = (threadId: string, n: number, what: string, timeoutMs = 300_000) =>
  waitFor(
    `question ${n} (${what}) in the thread`,
    () =>
      messagesIn(threadId).filter((m) =>
        /^(<@\d+> )?\*\*The agent asks to use|^\*\*\w+\*\* — the agent asked/.test(m.content),
      )[n - 1],
    timeoutMs,
    200,
  );
const summaryOf = (threadId: string, re: RegExp, what: string, timeoutMs = 300_000) =>
  discord.waitForMessage(
    threadId,
    (m) => /^(<@\d+> )?\*\*Claude Code (finished|failed)/.test(m.content) && re.test(m.content),
    what,
    timeoutMs,
  );

async function spawn(
  prompt: string,
  mode?: string,
): Promise<{ taskId: string; threadId: string; link: string }> {
  const i = discord.slash(alice, 'spawn', {
    prompt,
    runtime: 'claude-headless',
    ...(mode ? { permission_mode: mode } : {}),
  });
  const text = await i.until(
    'the spawn answer',
    (r) => /Task \*\*t_/.test(r.visibleText()) && r.visibleText(),
  );
  const taskId = /t_[a-z2-7]{10}/.exec(text)![0];
  const thread = await waitFor(
    'the thread',
    () => discord.threads.find((t) => t.name?.startsWith(taskId)),
    15_000,
  );
  const row = i.original?.components?.[0] as { components: { url?: string }[] } | undefined;
  return { taskId, threadId: thread.id, link: row!.components[0]!.url! };
}

describe('the agent as a conversation in Discord', () => {
  test('permission_mode autocompletes on /spawn', async () => {
    const a = discord.autocomplete(alice, 'spawn', 'permission_mode', 'ed');
    const choices = await a.until(
      'the suggestions',
      (r) => r.responses[0]?.data?.choices as { value: string }[] | undefined,
    );
    assert.deepEqual(
      choices.map((c) => c.value),
      ['edits'],
    );
    const all = discord.autocomplete(alice, 'spawn', 'permission_mode', '');
    const every = await all.until(
      'all the modes',
      (r) => r.responses[0]?.data?.choices as { name: string; value: string }[] | undefined,
    );
    assert.deepEqual(
      every.map((c) => c.value),
      ['ask', 'edits', 'auto'],
    );
    assert.match(every[0]!.name, /\(default\)/);
  });

  test('buttons: a stranger refused, Allow runs, Deny does not; a follow-up continues the session; Always allow asks no more; a waiting question lets the VM suspend and a click resumes it', async () => {
    const { taskId, threadId, link } = await spawn(
      [
        'Make two files.',
        '[[Bash {"command":"echo allowed-$((6*7)) > allowed.txt"}]]',
        '[[Bash {"command":"echo should-not-exist > denied.txt"}]]',
      ].join('\n'),
      'ask',
    );
    assert.equal((await task(taskId)).permissionMode, 'ask');

    // 1. The first command asks; Bob (not the owner) is refused; Alice allows it once.
    const q1 = await waitQuestion(threadId, 1, 'allowed.txt');
    assert.match(q1.content, /The agent asks to use Bash/);
    assert.ok(q1.content.startsWith(`<@${owner}> `), 'a waiting question mentions its owner (notify)');
    assert.match(q1.content, /echo allowed-\$\(\(6\*7\)\) > allowed\.txt/);
    assert.deepEqual(
      buttons(q1).map((b) => b.label),
      ['Allow once', 'Always allow this tool in this task', 'Deny'],
    );
    const stranger = discord.press(bob, q1, button(q1, /^Allow once/));
    const refusal = await stranger.until(
      'the refusal',
      (r) => /Only the owner/.test(r.visibleText()) && r.visibleText(),
    );
    assert.ok(stranger.ephemeral, 'the refusal is ephemeral');
    assert.match(refusal, new RegExp(taskId));
    assert.equal(buttons(q1).length, 3, "a stranger's click changes nothing");

    const allow = discord.press(alice, q1, button(q1, /^Allow once/));
    await allow.until('the answer', (r) => /Allowed once by you/.test(r.visibleText()));
    await waitFor(
      'the question message to show the decision',
      () => /Allowed once by <@/.test(q1.content) && buttons(q1).length === 0,
      30_000,
    );

    // 2. The second command asks, on the task page too; Alice denies it there.
    const q2 = await waitQuestion(threadId, 2, 'denied.txt');
    assert.match(q2.content, /denied\.txt/);
    const browser = await launchBrowser();
    try {
      // The thread as the bot posted it (drawn from the stand-in's messages, not Discord's client).
      const drawn = await browser.newPage({ viewport: { width: 900, height: 760 } });
      const names = { [alice.user.id]: 'alice', [bob.user.id]: 'bob' };
      await drawn.setContent(
        threadHtml(
          discord.threads.find((t) => t.id === threadId)!.name ?? '',
          messagesIn(threadId)
            .filter((m) => !/^output of /.test(m.content))
            .slice(-6),
          names,
        ),
      );
      await drawn.screenshot({
        path: path.join(repoRoot, 'docs', 'screenshots', 'thread-question.png'),
        fullPage: true,
      });
      await drawn.close();
      const page = await browser.newPage({ viewport: { width: 1100, height: 640 }, colorScheme: 'dark' });
      await page.goto(link);
      const asked = page.getByTestId('question');
      await asked.filter({ hasText: 'echo should-not-exist > denied.txt' }).waitFor({ timeout: 30_000 });
      await waitForScreen(
        page,
        (l) => l.some((x) => x.includes('waiting for the owner')),
        'the question in the terminal',
      );
      await page.screenshot({ path: path.join(repoRoot, 'docs', 'screenshots', 'task-question.png') });
      await asked.getByRole('button', { name: 'Deny' }).click();
      await asked.waitFor({ state: 'detached', timeout: 30_000 });
      await page.getByText('2 decisions', { exact: false }).waitFor({ timeout: 30_000 });
      await page.close();
    } finally {
      await browser.close();
    }
    await waitFor(
      'the Discord message to show the decision',
      () => /Denied by <@/.test(q2.content) && buttons(q2).length === 0,
      30_000,
    );

    const first = await summaryOf(threadId, /allowed/, 'the first turn summary');
    assert.ok(
      first.content.startsWith(`<@${owner}> **Claude Code finished**`),
      'a finished turn mentions its owner',
    );
    assert.match(first.content, /Ran Bash echo allowed-/);
    assert.match(first.content, /I could not run Bash echo should-not-exist > denied\.txt: it was refused/);

    // 3. A follow-up in the thread: the second turn of the same session.
    discord.say(
      alice,
      threadId,
      'Now check. [[Bash {"command":"cat allowed.txt; test -e denied.txt && echo denied-exists || echo no-denied-file"}]] [[recall]]',
    );
    const q3 = await waitQuestion(threadId, 3, 'the check');
    const always = discord.press(alice, q3, button(q3, /^Always allow/));
    await always.until('the answer', (r) => /always from now on/.test(r.visibleText()));
    const second = await summaryOf(threadId, /turn 2/, 'the second turn summary');
    assert.match(second.content, /which said: allowed-42/, 'Allow: the command ran in the guest');
    assert.match(
      second.content,
      /Earlier in this session I ran: echo allowed-/,
      'the agent remembers the first turn',
    );
    // The denied file's check is on the same line as the cat's output: the tool result shows both.
    const conv = (await s.api('GET', `/api/v1/tasks/${taskId}/conversation`, owner)).json;
    assert.equal(conv.turns.length, 2);
    assert.equal(conv.turns[1].status, 'done');
    assert.deepEqual(conv.allowedTools, ['Bash']);
    assert.deepEqual(conv.decisions.map((d: { how: string }) => d.how).sort(), ['always', 'deny', 'once']);

    // 4. Always allowed: the next Bash asks nothing.
    const before = messagesIn(threadId).filter((m) => buttons(m).length).length;
    discord.say(
      alice,
      threadId,
      'And once more. [[Bash {"command":"echo again-$((1+1)); test -e denied.txt || echo still-no-denied-file"}]]',
    );
    const third = await summaryOf(threadId, /turn 3/, 'the third turn summary');
    assert.match(third.content, /which said: again-2/);
    assert.equal(
      messagesIn(threadId).filter((m) => buttons(m).length).length,
      before,
      'no question with buttons for an always-allowed tool',
    );

    // 5. An Edit question left waiting: the task suspends (a question is not activity); Allow
    //    on the suspended task resumes it, and the frozen hook gets the answer.
    discord.say(
      alice,
      threadId,
      'Edit it. [[Read {"file_path":"$CWD/allowed.txt"}]] [[Edit {"file_path":"$CWD/allowed.txt","old_string":"allowed-42","new_string":"edited-43"}]] [[Bash {"command":"cat allowed.txt"}]]',
    );
    const q4 = await waitQuestion(threadId, 5, 'the edit');
    assert.match(q4.content, /The agent asks to use Edit/);
    assert.match(q4.content, /- allowed-42\n\+ edited-43/);
    await waitStatus(taskId, 'suspended', 180_000);
    assert.equal(qemuRunning(taskId), false, 'no QEMU while suspended');
    assert.equal((await task(taskId)).openQuestions, 1, 'the question still waits');
    const late = discord.press(alice, q4, button(q4, /^Allow once/));
    await late.until('the answer', (r) => /resuming/.test(r.visibleText()));
    const fourth = await summaryOf(threadId, /turn 4/, 'the fourth turn summary');
    assert.match(fourth.content, /which said: edited-43/, 'the edit was made after the resume');

    // The workflow's history holds the questions (signals) and the answers (updates).
    const history = await s.temporal.client.workflow.getHandle(taskId).fetchHistory();
    const events = history.events ?? [];
    const signals = events.filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'agentQuestion',
    );
    const updates = events.filter(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'answer',
    );
    assert.ok(signals.length >= 5, `questions in the history: ${signals.length}`);
    assert.equal(
      updates.length,
      4,
      'four answers (one from the page; the stranger never reached the workflow)',
    );

    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner)).status, 202);
    await waitStatus(taskId, 'terminated');
    // LIA_RECORD_HISTORIES=1: this history joins the replay guard (tests/integration/replay.test.ts).
    if (process.env.LIA_RECORD_HISTORIES) {
      const done = await s.temporal.client.workflow.getHandle(taskId).fetchHistory();
      const file = `conversation-questions-${new Date().toISOString().slice(0, 10)}.json`;
      fs.writeFileSync(path.join(repoRoot, 'tests', 'histories', file), historyToJSON(done));
    }
  });

  test('interactive, mode edits: an edit goes ahead, a command asks, the answer from the API lets it run', async () => {
    const res = await s.api('POST', '/api/v1/tasks', owner, {
      prompt: [
        'Write, then run.',
        '[[Write {"file_path":"$CWD/note.txt","content":"written-without-asking"}]]',
        '[[Bash {"command":"cat note.txt; echo interactive-$((3+4))"}]]',
      ].join('\n'),
      runtime: 'claude',
      permissionMode: 'edits',
    });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const taskId = res.json.taskId as string;
    const conv = () => s.api('GET', `/api/v1/tasks/${taskId}/conversation`, owner);
    const q = await waitFor(
      'the command question',
      async () =>
        (await conv()).json.questions?.[0] as { id: string; tool: string; summary: string } | undefined,
      300_000,
      500,
    );
    assert.equal(q.tool, 'Bash', 'the Write did not ask');
    assert.match(q.summary, /interactive-\$\(\(3\+4\)\)/);
    const bad = await s.api('POST', `/api/v1/tasks/${taskId}/questions/${q.id}`, 'someone-else', {
      choice: 'once',
    });
    assert.equal(bad.status, 403, JSON.stringify(bad.json));
    const ok = await s.api('POST', `/api/v1/tasks/${taskId}/questions/${q.id}`, owner, { choice: 'once' });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.decision.how, 'once');
    const again = await s.api('POST', `/api/v1/tasks/${taskId}/questions/${q.id}`, owner, { choice: 'deny' });
    assert.equal(again.status, 409, 'a settled question takes no second answer');
    const c = await StreamClient.open(
      s.apiUrl,
      taskId,
      decodeURIComponent(new URL(res.json.url).hash.slice('#token='.length)),
    );
    const squeezed = () => terminalLines(c.text()).join('').replace(/\s+/g, '');
    await waitFor(
      'the answer in the terminal',
      () => squeezed().includes('whichsaid:written-without-asking'),
      300_000,
      250,
    );
    await c.close();
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner)).status, 202);
    await waitStatus(taskId, 'terminated');
  });

  test('a question nobody answers is denied past its limit, and the agent is told', async () => {
    s.config.agent.question_timeout_minutes = 0.1;
    const { taskId, threadId } = await spawn('Try. [[Bash {"command":"echo late > late.txt"}]]');
    assert.equal((await task(taskId)).permissionMode, 'ask', 'ask is the default');
    const q = await waitQuestion(threadId, 1, 'late.txt');
    await waitFor(
      'the question to be denied',
      () => /Denied: nobody answered in time/.test(q.content) && buttons(q).length === 0,
      60_000,
    );
    const summary = await summaryOf(threadId, /late/, 'the summary');
    assert.match(summary.content, /I could not run Bash echo late > late\.txt: it was refused/);
    assert.match(summary.content, /Nobody answered/);
    assert.equal((await s.api('DELETE', `/api/v1/tasks/${taskId}`, owner)).status, 202);
    await waitStatus(taskId, 'terminated');
  });
});
