/**
 * The coding loop end to end (issue 20), with a real QEMU guest and the real git client in it:
 * spawn with a repository → the guest has the checkout on lia/<task> before the agent starts →
 * a change made in the terminal → POST /pull-request commits and pushes it through the host's
 * proxy and opens the pull request on the forge stand-in, with the task's summary in its body.
 * The guest cannot push to main (the proxy's message is shown), and the forge token is nowhere in
 * the guest: not in its environment or git config, not on its disk, not in its snapshot. Opening
 * the pull request of a suspended task resumes it first, and updates the same pull request.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Bot, startBot } from '../../bot/client.js';
import { discordTiming } from '../../bot/discord-rules.js';
import { saveSummary } from '../../common/db/tasks.js';
import { createLogger } from '../../common/logger.js';
import { ThreadRecords } from '../../tasks/threads.js';
import { launchBrowser } from '../helpers/browser.js';
import { repoRoot, waitFor } from '../helpers/env.js';
import { StreamClient, startTestStack, type TestStack } from '../helpers/stack.js';
import { taskOps } from '../helpers/tasks.js';
import { DiscordStandIn, type InteractionRecord } from '../standins/discord/standin.js';
import { type ForgeStandin, forgeEnv, startForgeStandin } from '../standins/forge/forge-standin.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const OWNER = 'u-repo-loop';
const TOKEN = `ghs_LiaRepoLoop${Date.now().toString(36)}HostOnly0123456789`;
/** Long enough for git under software emulation between two keystrokes; short enough to wait for. */
const IDLE_S = 45;
let forge: ForgeStandin;
let s: TestStack;
let t: ReturnType<typeof taskOps>;
const discord = new DiscordStandIn();
const alice = discord.addUser('alice');
let bot: Bot | undefined;
const MODEL_KEY = `sk-ant-lia-test-repo-loop-${Date.now().toString(36)}`;
/** Claude Code's tool call (the bonus path): an edit and a commit in the checkout. */
const model = new ModelStandIn(
  MODEL_KEY,
  {
    name: 'Bash',
    input: {
      command:
        'echo by-claude >> README.md && git commit -qam "Claude: a line in the README" && echo committed',
      description: 'Edit and commit',
    },
  },
  'Done: the README has a new line.',
);

before(async () => {
  forge = await startForgeStandin({ [TOKEN]: { repos: '*', write: true, login: 'lia-app' } });
  forge.createRepo('acme', 'widgets', { 'README.md': '# widgets\n', 'src/a.txt': 'one\n' });
  forge.createRepo('acme', 'gadgets', { 'README.md': '# gadgets\n' });
  await discord.start();
  await model.start();
  s = await startTestStack('e2e_repo_loop', {
    LIA__CLAUDE__API_KEY: MODEL_KEY,
    LIA__CLAUDE__BASE_URL: model.url,
    LIA__DISCORD__TOKEN: discord.token,
    LIA__DISCORD__APPLICATION_ID: discord.applicationId,
    LIA__DISCORD__API_URL: discord.apiUrl,
    LIA__DISCORD__SPAWN_GUILDS: discord.guildId,
    LIA__DISCORD__TAIL_SECONDS: '0.5',
    LIA__VM__DRIVER: 'qemu',
    // Claude Code (the last test) needs room; a guest's memory is taken only as it is used.
    LIA__VM__MEMORY_MIB: '1024',
    LIA__VM__DEFAULT_STORAGE_GB: '4',
    ...forgeEnv(forge, TOKEN, 'acme/widgets'),
    LIA__FORGE__USER_LOGINS: `${OWNER}=octo-owner`,
  });
  t = taskOps(s, OWNER);
  bot = await startBot({
    config: s.config,
    tasks: s.tasks,
    output: s.output,
    threadRecords: new ThreadRecords(s.pool),
    logger: createLogger('repo-loop-bot', 'warn'),
    databaseUrl: s.vars.LIA__DATABASE__URL!,
    timing: discordTiming(),
  });
});
after(async () => {
  await bot?.stop();
  await s?.close();
  await discord.close();
  await model.close();
  await forge?.close();
});

const spawn = (body: Record<string, unknown>) =>
  s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'a shell for tests', runtime: 'shell', ...body });

test('a repository is refused clearly at spawn when it is not on the allowlist, or badly named', async () => {
  const notAllowed = await spawn({ repo: 'acme/gadgets' });
  assert.equal(notAllowed.status, 400, JSON.stringify(notAllowed.json));
  assert.match(
    notAllowed.json.message ?? notAllowed.json.error?.message ?? JSON.stringify(notAllowed.json),
    /not on this Lia's allowlist/,
  );
  const otherHost = await spawn({ repo: 'https://gitlab.example/acme/widgets' });
  assert.equal(otherHost.status, 400);
  assert.match(JSON.stringify(otherHost.json), /must be on 127\.0\.0\.1/);
  const branchAlone = await spawn({ branch: 'main' });
  assert.equal(branchAlone.status, 400);
  assert.match(JSON.stringify(branchAlone.json), /branch needs repo/);
  const badBranch = await spawn({ repo: 'acme/widgets', branch: '../main' });
  assert.equal(badBranch.status, 400);
  const list = await s.api('GET', '/api/v1/tasks', OWNER);
  assert.equal(list.json.tasks.length, 0, 'nothing was created');
});

test('spawn with a repository → checkout on lia/<task> → change → pull request; main refused; no token in the guest', async () => {
  const res = await spawn({ repo: `${forge.gitUrl}/acme/widgets.git`, idleTimeoutSeconds: IDLE_S });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const taskId: string = res.json.taskId;
  const token = decodeURIComponent(new URL(res.json.url).hash.replace('#token=', ''));
  const branch = `lia/${taskId}`;
  const mainBefore = forge.branchSha('acme', 'widgets', 'main');
  await t.waitStatus(taskId, 'running', 600_000);
  const view = await t.view(taskId);
  assert.deepEqual(view.repo, { owner: 'acme', name: 'widgets', branch });

  const c = await StreamClient.open(s.apiUrl, taskId, token);
  // Typed while the clone may still run: kept by the sidecar for the agent, not dropped.
  c.type('echo typed-early=$((3*3))\r');
  await c.waitForText(`widgets is checked out on ${branch}`, 180_000);
  await c.waitForText('typed-early=9', 60_000);
  await c.waitForText('$ ', 60_000);
  c.type('echo branch=$(git branch --show-current) dir=$(pwd)\r');
  await c.waitForText(/branch=\S+ dir=\S+/, 60_000);
  assert.match(c.text(), new RegExp(`branch=${branch.replace('/', '\\/')} dir=/work/widgets`));
  c.type('echo prompt=$(head -c 17 PROMPT.md)\r');
  await c.waitForText('prompt=a shell for tests', 60_000);

  // The guest may not push main: the proxy refuses, and git shows its message.
  c.type(
    'echo from-the-agent >> README.md && git commit -qam "agent change" && git push origin HEAD:main; echo push-main=$?\r',
  );
  await c.waitForText(/push-main=\d+/, 180_000);
  assert.match(c.text(), /push-main=[1-9]/);
  assert.match(c.text(), /may push only to its own branch/);
  assert.equal(forge.branchSha('acme', 'widgets', 'main'), mainBefore, 'main did not move');

  // Nor another repository.
  c.type(`git ls-remote ${forge.gitUrl}/acme/gadgets.git >/dev/null 2>&1; echo fetch-other=$?\r`);
  await c.waitForText(/fetch-other=\d+/, 120_000);
  assert.match(c.text(), /fetch-other=[1-9]/);

  // The token is nowhere the agent can read: environment, git config, the checkout.
  c.type(
    `(env; cat ~/.gitconfig .git/config; grep -r ${TOKEN.slice(0, 12)} /work /home /etc 2>/dev/null) | grep -c ${TOKEN.slice(0, 12)}; echo grep-done-$((2+3))\r`,
  );
  await c.waitForText('grep-done-5', 120_000);
  assert.equal(c.text().includes(TOKEN), false, 'the token never reaches the terminal');

  // An uncommitted change too: the pull request's commit takes it. And a file git does not know yet.
  c.type(
    "echo uncommitted >> src/a.txt; printf 'export const answer = 42;\\n// the agent wrote this\\n' > src/answer.ts; echo changed=$((0+1))\r",
  );
  await c.waitForText('changed=1', 60_000);

  // The diff, from the guest on demand: committed, uncommitted and untracked, against the base.
  const diff = await s.api('GET', `/api/v1/tasks/${taskId}/diff`, OWNER);
  assert.equal(diff.status, 200, JSON.stringify(diff.json));
  assert.equal(diff.json.fresh, true);
  assert.deepEqual(diff.json.files.map((f: { path: string; added: number }) => [f.path, f.added]).sort(), [
    ['README.md', 1],
    ['src/a.txt', 1],
    ['src/answer.ts', 2],
  ]);
  assert.deepEqual(diff.json.stat, { files: 3, added: 4, deleted: 0 });
  assert.match(diff.json.patch, /^\+export const answer = 42;$/m);
  assert.match(diff.json.patch, /^\+from-the-agent$/m);
  assert.equal(diff.json.base, mainBefore, "the base is main's commit the branch started from");

  // The task page shows it: files, counts, the unified diff with syntax colour.
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 }, colorScheme: 'dark' });
    await page.goto(res.json.url);
    await page.getByRole('button', { name: 'Changes' }).click();
    const panel = page.getByTestId('diff');
    await panel
      .getByTestId('diff-stat')
      .filter({ hasText: '3 files changed, +4 −0' })
      .waitFor({ timeout: 60_000 });
    const file = panel.locator('[data-testid="diff-file"][data-path="src/answer.ts"]');
    await file.locator('tr.add', { hasText: 'export const answer = 42;' }).waitFor({ timeout: 10_000 });
    // Coloured by the TypeScript grammar: a keyword and a comment, as elements (never as markup).
    assert.equal(await file.locator('tr.add .hljs-keyword', { hasText: 'export' }).count(), 1);
    assert.equal(await file.locator('tr.add .hljs-comment').count(), 1);
    assert.equal(await panel.locator('[data-testid="diff-file"]').count(), 3);
    await page.screenshot({ path: path.join(repoRoot, 'docs', 'screenshots', 'task-diff.png') });
    await page.close();
  } finally {
    await browser.close();
  }

  // A headless run would have left this summary; the pull request's body carries it.
  await saveSummary(s.pool, taskId, {
    result: 'Added a line to the README and to src/a.txt.',
    isError: false,
    numTurns: 1,
    durationMs: 1000,
  });
  const pr = await s.api('POST', `/api/v1/tasks/${taskId}/pull-request`, OWNER);
  assert.equal(pr.status, 200, JSON.stringify(pr.json));
  assert.equal(pr.json.created, true);
  assert.equal(pr.json.branch, branch);
  assert.deepEqual(pr.json.stat, { files: 3, added: 4, deleted: 0 }, 'what the pull request holds');
  const pulls = forge.pulls('acme', 'widgets');
  assert.equal(pulls.length, 1);
  assert.equal(pulls[0]!.head, branch);
  assert.equal(pulls[0]!.base, 'main');
  assert.match(pulls[0]!.body ?? '', /Added a line to the README and to src\/a\.txt\./);
  assert.match(pulls[0]!.body ?? '', /a shell for tests/);
  assert.match(pulls[0]!.body ?? '', new RegExp(`/tasks/${taskId}`));
  const bare = path.join(forge.root, 'acme', 'widgets.git');
  const show = (rev: string) =>
    spawnSync('git', ['--git-dir', bare, 'show', rev], { encoding: 'utf8' }).stdout;
  assert.match(show(`${branch}:README.md`), /from-the-agent/);
  assert.match(show(`${branch}:src/a.txt`), /uncommitted/);
  assert.equal(
    show(`${branch}:PROMPT.md`),
    '',
    "the task's PROMPT.md (beside the agent, ignored by git) is not committed",
  );
  assert.match(
    spawnSync('git', ['--git-dir', bare, 'log', '-1', '--format=%an', branch], { encoding: 'utf8' }).stdout,
    /Lia agent/,
  );
  assert.equal(forge.branchSha('acme', 'widgets', 'main'), mainBefore, 'main did not move');
  const shown = await t.view(taskId);
  assert.deepEqual(shown.pullRequest, { url: pr.json.url, number: pr.json.number });
  assert.equal(shown.pullRequestLast?.kind, 'opened');
  assert.equal(shown.pullRequestLast?.trigger, 'asked');
  await c.close();

  // Idle → suspended: the snapshot and the disk hold no token.
  await t.waitStatus(taskId, 'suspended', (IDLE_S + 180) * 1000);
  const dir = t.vmDir(taskId);
  const snapshot = fs.readFileSync(path.join(dir, 'state.bin'));
  assert.ok(snapshot.length > 1024 * 1024);
  assert.equal(snapshot.indexOf(TOKEN), -1, 'the token is not in the snapshot');
  assert.equal(fs.readFileSync(path.join(dir, 'disk.qcow2')).indexOf(TOKEN), -1, 'nor on the disk');

  // A suspended task's diff is the last one its guest gave (taken after the push), and says so.
  const stale = await s.api('GET', `/api/v1/tasks/${taskId}/diff`, OWNER);
  assert.equal(stale.status, 200, JSON.stringify(stale.json));
  assert.equal(stale.json.fresh, false);
  assert.match(stale.json.note, /is suspended/);
  assert.deepEqual(stale.json.stat, { files: 3, added: 4, deleted: 0 });
  assert.equal(await t.statusOf(taskId), 'suspended', 'reading the diff does not resume the task');

  // Open pull request on a suspended task: it is resumed, pushes again, and the same PR is updated.
  const again = await s.api('POST', `/api/v1/tasks/${taskId}/pull-request`, OWNER);
  assert.equal(again.status, 200, JSON.stringify(again.json));
  assert.equal(again.json.created, false);
  assert.equal(again.json.number, pr.json.number);
  assert.equal(forge.pulls('acme', 'widgets').length, 1);
  assert.equal(await t.statusOf(taskId), 'running');

  // Everything the forge saw carried the host's token, from the host.
  assert.ok(forge.requests.some((r) => r.path.includes('git-receive-pack')));
  await t.stop(taskId);
});

test('the pull request of a task without a repository is refused with the reason', async () => {
  const res = await spawn({ idleTimeoutSeconds: 600 });
  assert.equal(res.status, 201);
  const pr = await s.api('POST', `/api/v1/tasks/${res.json.taskId}/pull-request`, OWNER);
  assert.equal(pr.status, 400);
  assert.match(JSON.stringify(pr.json), /without a repository/);
  const diff = await s.api('GET', `/api/v1/tasks/${res.json.taskId}/diff`, OWNER);
  assert.equal(diff.status, 400);
  assert.match(JSON.stringify(diff.json), /without a repository: it has no diff/);
  await t.stop(res.json.taskId);
});

test('a host worker restart: the new worker tells its proxy the task repository again, and the agent pushes', async () => {
  const res = await spawn({ repo: 'acme/widgets', idleTimeoutSeconds: 600 });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const taskId: string = res.json.taskId;
  const token = decodeURIComponent(new URL(res.json.url).hash.replace('#token=', ''));
  await t.waitStatus(taskId, 'running', 600_000);
  const c = await StreamClient.open(s.apiUrl, taskId, token);
  await c.waitForText(`widgets is checked out on lia/${taskId}`, 180_000);
  await c.close();

  // The proxy's map of task → repository lives in the worker's memory: a new worker starts empty.
  await s.killHostWorker('SIGKILL');
  await s.startHostWorker();
  const c2 = await StreamClient.open(s.apiUrl, taskId, token);
  c2.type(
    'echo after-restart >> README.md && git commit -qam restart && git push -q origin HEAD; echo pushed=$((0+$?))x\r',
  );
  await c2.waitForText(/pushed=\d+x/, 240_000);
  assert.match(c2.text(), /pushed=0x/, 'the agent pushed its branch through the new worker');
  await waitFor('the branch on the forge', () => forge.branchSha('acme', 'widgets', `lia/${taskId}`), 10_000);
  await c2.close();
  await t.stop(taskId);
});

const answered = (i: InteractionRecord, re: RegExp, timeoutMs = 20_000) =>
  i.until(String(re), (r) => re.test(r.visibleText()) && r.visibleText(), timeoutMs);

test('Discord: /spawn repo: with autocomplete from the allowlist → Open pull request in the thread → its link there', async () => {
  const choices = await discord
    .autocomplete(alice, 'spawn', 'repo', 'wid')
    .until('choices', (r) => r.responses[0]?.data?.choices as { value: string }[] | undefined);
  assert.deepEqual(
    choices.map((c) => c.value),
    ['acme/widgets'],
  );
  await answered(
    discord.slash(alice, 'spawn', { prompt: 'x', runtime: 'shell', repo: 'acme/gadgets' }),
    /not on this Lia's allowlist/,
  );

  const i = discord.slash(alice, 'spawn', { prompt: 'the bot loop', runtime: 'shell', repo: 'acme/widgets' });
  const text = await answered(i, /Task \*\*t_/);
  const taskId = /t_[a-z2-7]{10}/.exec(text)![0];
  const thread = await waitFor(
    `the thread of ${taskId}`,
    () => discord.threads.find((th) => th.name?.startsWith(taskId)),
    15_000,
  );
  const intro = await discord.waitForMessage(
    thread.id,
    (m) => /goes to the agent/.test(m.content),
    'the intro',
  );
  assert.ok(JSON.stringify(intro.components ?? []).includes(`lia:pr:${taskId}`), 'the intro has the button');

  const ops = taskOps(s, alice.user.id);
  await ops.waitStatus(taskId, 'running', 600_000);
  const link = await s.tasks.link(alice.user.id, taskId);
  const c = await StreamClient.open(
    s.apiUrl,
    taskId,
    decodeURIComponent(new URL(link).hash.replace('#token=', '')),
  );
  await c.waitForText(`widgets is checked out on lia/${taskId}`, 180_000);
  c.type('echo from-discord >> README.md; echo edited=$((40+2))\r');
  await c.waitForText('edited=42', 60_000);
  await c.close();

  const press = discord.press(alice, intro, `lia:pr:${taskId}`);
  await answered(press, /Pull request opened: \[#\d+\]/, 300_000);
  // The thread hears of it with what the pull request holds (the diff's stat).
  await discord.waitForMessage(
    thread.id,
    (m) =>
      /Pull request opened: \[#\d+\]\(\S+\) from `lia\/t_\w+` — 1 file changed, \+1 −0\./.test(m.content),
    'the link and the stat in the thread',
  );
  const pr = forge.pulls('acme', 'widgets').find((p) => p.head === `lia/${taskId}`);
  assert.ok(pr, 'the stand-in holds the pull request');
  assert.match(pr.body ?? '', /the bot loop/);
  const st = discord.slash(alice, 'status', { task_id: taskId });
  await answered(st, /Pull request/);
  await ops.stop(taskId);
  assert.deepEqual(discord.takeRefusals(), [], 'requests Discord would have refused');
});

test('Claude Code (headless) edits and commits in the checkout; the pull request carries its summary', async () => {
  const res = await s.api('POST', '/api/v1/tasks', OWNER, {
    prompt: 'Add a line to the README.',
    runtime: 'claude-headless',
    // No questions: this test is about the loop (the default mode, ask, is tested in conversation).
    permissionMode: 'auto',
    repo: 'acme/widgets',
    idleTimeoutSeconds: 1800,
  });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const taskId: string = res.json.taskId;
  const branch = `lia/${taskId}`;
  const done = await waitFor(
    'the headless run summary',
    async () => (await t.view(taskId)).summary ?? undefined,
    600_000,
    500,
  );
  assert.match(done.result, /Done: the README has a new line\./);
  assert.ok(model.requests.some((r) => r.kind === 'tool_call'));
  // Nobody asks: the end of the turn opens the pull request (LIA__FORGE__PULL_REQUEST_AFTER_TURN).
  const pull = await waitFor(
    'the pull request opened after the turn',
    () => forge.pulls('acme', 'widgets').find((p) => p.head === branch),
    300_000,
    500,
  );
  const last = await waitFor(
    'the outcome on the task',
    async () => (await t.view(taskId)).pullRequestLast,
    30_000,
  );
  assert.equal(last.kind, 'opened');
  assert.equal(last.trigger, 'turn');
  assert.equal(last.turn, 1);
  assert.deepEqual(last.stat, { files: 1, added: 1, deleted: 0 });
  // The owner's forge login (LIA__FORGE__USER_LOGINS): named and assigned; the PR stays the token's.
  assert.deepEqual(pull.assignees, ['octo-owner']);
  assert.match(pull.body ?? '', /requested by @octo-owner/);
  assert.match(pull.body ?? '', /Done: the README has a new line\./);
  assert.match(pull.body ?? '', /Add a line to the README\./);
  const bare = path.join(forge.root, 'acme', 'widgets.git');
  const log = spawnSync('git', ['--git-dir', bare, 'log', '--format=%s', `main..${branch}`], {
    encoding: 'utf8',
  }).stdout;
  assert.match(log, /Claude: a line in the README/, "Claude's own commit is on the branch");
  assert.match(
    spawnSync('git', ['--git-dir', bare, 'show', `${branch}:README.md`], { encoding: 'utf8' }).stdout,
    /by-claude/,
  );
  // "open a PR" as a follow-up: Lia opens (updates) it, the agent is not asked.
  const modelCalls = model.requests.length;
  const ask = await s.api('POST', `/api/v1/tasks/${taskId}/turns`, OWNER, { text: 'open a PR' });
  assert.equal(ask.status, 202, JSON.stringify(ask.json));
  assert.equal(ask.json.kind, 'pull-request');
  assert.equal(ask.json.pullRequest.created, false);
  assert.equal(ask.json.pullRequest.number, pull.number);
  assert.equal(model.requests.length, modelCalls, 'the model was not asked');
  assert.equal((await t.view(taskId)).pullRequestEvents, 2);
  await t.stop(taskId);
});
