/**
 * The web UI in a real browser (Chromium through playwright-core) against the real stack: the
 * signed link opens the task page, the terminal shows the agent and takes keystrokes, a stream
 * cut by the server resumes with nothing lost or doubled, idle suspend → resume by the button,
 * suspend again → resume by typing (the typed command runs), stop.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { addUsage } from '../common/db/tasks.js';
import { launchBrowser, screenLines, waitForScreen } from './helpers/browser.js';
import { startTestStack, type TestStack } from './helpers/stack.js';

const OWNER = 'u-web';
let s: TestStack;
let browser: Browser;
let page: Page;
let taskId: string;

before(async () => {
  s = await startTestStack('web');
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await s?.close();
});

const badge = () => page.getByTestId('status');
const waitBadge = async (status: string, timeoutMs = 30_000) => {
  await badge()
    .filter({ hasText: new RegExp(`^${status}$`) })
    .waitFor({ timeout: timeoutMs });
};
const has = (line: string) => (lines: string[]) => lines.some((l) => l.trim() === line);

describe('the web UI', () => {
  test('the signed link opens the live terminal; typed commands run', async () => {
    const res = await s.api('POST', '/api/v1/tasks', OWNER, {
      prompt: 'a shell for the browser',
      runtime: 'shell',
      idleTimeoutSeconds: 5,
    });
    assert.equal(res.status, 201);
    taskId = res.json.taskId;
    page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    await page.goto(res.json.url);
    await waitBadge('running');
    await waitForScreen(page, (l) => l.some((x) => x.includes('$')), 'the shell prompt');
    assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar');
    await page.getByRole('region', { name: 'Agent terminal' }).click();
    await page.keyboard.type('echo web-$((6*7))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('web-42'), 'the command output');
    await page.getByText(/suspends when idle in \d+ s/).waitFor();
  });

  test('resizing the window resizes the PTY; the page shows the tokens the host counted', async () => {
    await page.setViewportSize({ width: 700, height: 420 });
    await page.waitForFunction(
      () => (window as unknown as { liaTerminal: { cols: number } }).liaTerminal.cols < 100,
    );
    const size = await page.evaluate(() => {
      const t = (window as unknown as { liaTerminal: { cols: number; rows: number } }).liaTerminal;
      return { cols: t.cols, rows: t.rows };
    });
    assert.ok(size.cols < 100, `the terminal refitted to ${size.cols} columns`);
    await page.keyboard.type('stty size');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has(`${size.rows} ${size.cols}`), `the PTY at ${size.rows}x${size.cols}`);
    await page.setViewportSize({ width: 1100, height: 700 });

    // As the egress proxy would record a model call for this task:
    await addUsage(
      s.pool,
      taskId,
      { inputTokens: 1234, outputTokens: 56, cacheReadTokens: 0, cacheCreationTokens: 0 },
      0.0125,
    );
    await page
      .getByTestId('usage')
      .filter({ hasText: '1,234 tokens in · 56 out' })
      .waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('usage').innerText(), /\$0\.0125/);
  });

  test('a stream cut by the server reconnects from its last seq: every line once', async () => {
    await page.keyboard.type('for i in $(seq 1 300); do echo line-$i; sleep 0.01; done; echo loop-done');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('line-60'), 'the loop to be under way');
    assert.ok(s.dropStreams() >= 1, 'the server cut the stream');
    await waitForScreen(page, has('loop-done'), 'the loop to finish after the reconnect', 30_000);
    const lines = await screenLines(page);
    for (let i = 1; i <= 300; i++) {
      const n = lines.filter((l) => l.trim() === `line-${i}`).length;
      assert.equal(n, 1, `line-${i} is shown ${n} times`);
    }
    assert.equal(await page.getByTestId('reconnecting').count(), 0, 'the banner is gone once reconnected');
  });

  test('suspended by the idle timer, resumed by the button: the same shell', async () => {
    await page.keyboard.type('X=42');
    await page.keyboard.press('Enter');
    await waitBadge('suspended', 30_000);
    await page.getByTestId('suspended').waitFor();
    await page.getByRole('button', { name: 'Resume' }).click();
    await waitBadge('running', 60_000);
    await page.getByRole('region', { name: 'Agent terminal' }).click();
    await page.keyboard.type('echo button-$X');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('button-42'), 'the shell kept its variable');
  });

  test('suspended again, resumed by typing: the keystrokes reach the shell after the restore', async () => {
    await waitBadge('suspended', 30_000);
    await page.getByRole('region', { name: 'Agent terminal' }).click();
    await page.keyboard.type('echo typed-$((X+1))');
    await page.keyboard.press('Enter');
    await waitBadge('running', 60_000);
    await waitForScreen(page, has('typed-43'), 'the command typed while suspended', 30_000);
  });

  test('stop ends the task; the list shows it', async () => {
    await page.getByRole('button', { name: 'Stop' }).click();
    await waitBadge('terminated', 30_000);
    assert.ok(await page.getByRole('button', { name: 'Stop' }).isDisabled());
    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByRole('heading', { name: 'Your tasks' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: taskId });
    await row.getByText('terminated').waitFor();
  });
});
