/**
 * The web UI in a real browser (Chromium through playwright-core) against the real stack: the
 * signed link opens the task page, the terminal shows the agent and takes keystrokes, a stream
 * cut by the server resumes with nothing lost or doubled (output, and keystrokes in flight), idle suspend → resume by the button,
 * suspend again → resume by typing (the typed command runs), keyboard-only use, stop, the list,
 * and the same page from Vite's dev server with the API (and its WebSocket) proxied.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { addUsage } from '../../common/db/tasks.js';
import { ensureWebBuilt } from '../../web/build.js';
import { launchBrowser, screenLines, waitForScreen } from '../helpers/browser.js';
import { waitFor } from '../helpers/env.js';
import { startTestStack, type TestStack } from '../helpers/stack.js';

const OWNER = 'u-web';
let s: TestStack;
let browser: Browser;
let page: Page;
let taskId: string;

before(async () => {
  // The stack serves web/dist: build it (Vite) when the sources changed since the last build.
  await ensureWebBuilt((m) => console.log(m));
  s = await startTestStack('web');
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await s?.close();
});

const waitBadge = async (status: string, timeoutMs = 30_000, on = page) => {
  await on
    .getByTestId('status')
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
    // What the page itself reports goes into the test log, for when a case fails.
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && console.log(`[page console] ${m.text()}`));
    await page.goto(res.json.url);
    await waitBadge('running');
    await waitForScreen(page, (l) => l.some((x) => x.includes('$')), 'the shell prompt');
    assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar');
    await page.getByRole('region', { name: 'Agent terminal' }).click();
    await page.keyboard.type('echo web-$((6*7))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('web-42'), 'the command output');
    await page.getByText(/suspends when idle in \d+ s/).waitFor();
    assert.equal(await page.getByTestId('task-id').textContent(), taskId);
  });

  test('the terminal follows the system colour scheme', async () => {
    const background = (bg: string) =>
      page.waitForFunction(
        (want) =>
          (window as unknown as { liaTerminal: import('@xterm/xterm').Terminal }).liaTerminal.options.theme
            ?.background === want,
        bg,
        { timeout: 5000 },
      );
    const pageBackground = () =>
      page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await page.emulateMedia({ colorScheme: 'light' });
    await background('#fdfdfd');
    assert.equal(await pageBackground(), 'rgb(250, 250, 250)');
    await page.emulateMedia({ colorScheme: 'dark' });
    await background('#101014');
    assert.equal(await pageBackground(), 'rgb(22, 22, 26)');
  });

  test('resizing the window resizes the PTY; the page shows the tokens the host counted', async () => {
    // The header stays one line at any width: a header that wraps would change the terminal's rows.
    const headerHeight = async () => (await page.locator('header').boundingBox())!.height;
    const wide = await headerHeight();
    await page.setViewportSize({ width: 700, height: 420 });
    assert.equal(await headerHeight(), wide, 'the header keeps its height');
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
      { inputTokens: 1234, outputTokens: 56, cacheReadTokens: 10_000, cacheCreationTokens: 500 },
      0.0125,
    );
    // The input is all of it (uncached + cache read + cache write); its parts in the tooltip.
    await page
      .getByTestId('usage')
      .filter({ hasText: '11,734 tokens in · 56 out' })
      .waitFor({ timeout: 15_000 });
    assert.match((await page.getByTestId('usage').textContent()) ?? '', /\$0\.0125/);
    assert.equal(
      await page.getByTestId('usage').getAttribute('title'),
      'Tokens: 11,734 in (1,234 uncached · 10,000 cache read · 500 cache write) · 56 out · about $0.0125',
    );
  });

  test('a stream cut by the server reconnects from its last seq: every line once', async () => {
    await page.keyboard.type('for i in $(seq 1 300); do echo line-$i; sleep 0.01; done; echo loop-done');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('line-60'), 'the loop to be under way');
    const rows = () =>
      page.evaluate(() => (window as unknown as { liaTerminal: { rows: number } }).liaTerminal.rows);
    const rowsBefore = await rows();
    assert.ok(s.dropStreams() >= 1, 'the server cut the stream');
    await page.getByTestId('reconnecting').waitFor({ timeout: 5000 });
    assert.equal(await rows(), rowsBefore, 'the notice floats over the terminal: no resize');
    await waitForScreen(page, has('loop-done'), 'the loop to finish after the reconnect', 30_000);
    const lines = await screenLines(page);
    for (let i = 1; i <= 300; i++) {
      const n = lines.filter((l) => l.trim() === `line-${i}`).length;
      assert.equal(n, 1, `line-${i} is shown ${n} times`);
    }
    assert.equal(await page.getByTestId('reconnecting').count(), 0, 'the banner is gone once reconnected');
  });

  test('keystrokes lost in flight are sent again after a reconnect; a lost ack doubles nothing', async () => {
    // From here the page's sockets pass through the test, which can lose frames either way.
    let loseInput = false;
    let loseAcks = false;
    await page.routeWebSocket(/\/stream\?/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        if (!(loseInput && typeof m === 'string' && m.includes('"input"'))) server.send(m);
      });
      server.onMessage((m) => {
        if (!(loseAcks && typeof m === 'string' && m.includes('"ack"'))) ws.send(m);
      });
    });
    const reconnect = async () => {
      assert.ok(s.dropStreams() >= 1, 'the server cut the stream');
      await page.getByTestId('reconnecting').waitFor({ timeout: 5000 });
      await page.getByTestId('reconnecting').waitFor({ state: 'detached', timeout: 15_000 });
    };
    await reconnect(); // now through the route

    loseInput = true;
    await page.keyboard.type('echo lost-$((3*3))');
    await page.keyboard.press('Enter');
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(!has('lost-9')(await screenLines(page)), 'the keystrokes never reached the server');
    loseInput = false;
    await reconnect();
    await waitForScreen(page, has('lost-9'), 'the command, sent again after the reconnect');

    loseAcks = true;
    await page.keyboard.type('echo acked-$((5*5))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('acked-25'), 'the command to run (its acks lost)');
    loseAcks = false;
    await reconnect();
    await page.keyboard.type('echo after-$((2*3))');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('after-6'), 'the next command');
    const lines = await screenLines(page);
    assert.equal(lines.filter((l) => l.trim() === 'lost-9').length, 1, 'the resent command ran once');
    assert.equal(lines.filter((l) => l.trim() === 'acked-25').length, 1, 'the repeat was not run again');
    await page.unrouteAll();
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

  test('keyboard only: F6 leaves the terminal, Tab reaches the buttons with a visible focus, F6 goes back', async () => {
    await page.getByRole('region', { name: 'Agent terminal' }).click();
    await page.keyboard.press('F6');
    const focused = () =>
      page.evaluate(() => {
        const e = document.activeElement as HTMLElement;
        return { text: e.textContent, tag: e.tagName, outline: getComputedStyle(e).outlineStyle };
      });
    assert.deepEqual(await focused(), { text: 'Tasks', tag: 'A', outline: 'solid' });
    // Tab goes through the header in order, to Stop (Resume is disabled while running).
    let f = await focused();
    for (let i = 0; i < 6 && f.text !== 'Stop'; i++) {
      await page.keyboard.press('Tab');
      f = await focused();
    }
    assert.deepEqual(f, { text: 'Stop', tag: 'BUTTON', outline: 'solid' });
    // Stop asks first; Escape takes the question back and returns the focus to Stop.
    await page.keyboard.press('Enter');
    assert.equal((await focused()).text, 'Stop the task');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.activeElement?.textContent === 'Stop');
    await waitBadge('running');
    await page.keyboard.press('F6');
    assert.ok(
      await page.evaluate(() => document.activeElement?.closest('[data-testid="terminal"]') !== null),
      'F6 puts the focus back in the terminal',
    );
    await page.keyboard.type('echo keys-ok');
    await page.keyboard.press('Enter');
    await waitForScreen(page, has('keys-ok'), 'a command typed after coming back');
  });

  test('the list through a link shows its own task only; stop ends the task and closes its link', async () => {
    const other = await s.api('POST', '/api/v1/tasks', OWNER, {
      prompt: 'another shell',
      runtime: 'shell',
      idleTimeoutSeconds: 600,
    });
    assert.equal(other.status, 201);
    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByRole('heading', { name: 'Your tasks' }).waitFor();
    await page.getByRole('row').filter({ hasText: taskId }).waitFor();
    // A link opens its one task: the owner's other task is not listed through it.
    assert.equal(await page.getByRole('row').filter({ hasText: other.json.taskId }).count(), 0);
    await page.getByRole('link', { name: taskId }).click();
    await page.waitForURL(new RegExp(`/tasks/${taskId}`));
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('button', { name: 'Stop the task' }).click();
    // The stop revoked the link: the page says so, and the API refuses the old token.
    await page
      .getByText(/replaced by a newer one, or its task was stopped/)
      .first()
      .waitFor({ timeout: 30_000 });
    await waitFor(
      'the task to end',
      async () => (await s.api('GET', `/api/v1/tasks/${taskId}`, OWNER)).json.status === 'terminated',
      30_000,
    );
    await s.api('DELETE', `/api/v1/tasks/${other.json.taskId}`, OWNER);
  });

  test('in development, the Vite dev server proxies the API and the stream to it', async () => {
    const res = await s.api('POST', '/api/v1/tasks', OWNER, { prompt: 'dev', runtime: 'shell' });
    assert.equal(res.status, 201);
    process.env.LIA_API_URL = s.apiUrl; // read by web/vite.config.ts
    const { createServer } = await import('vite');
    const web = path.join(import.meta.dirname, '..', '..', 'web');
    const dev = await createServer({
      configFile: path.join(web, 'vite.config.ts'),
      root: web,
      server: { host: '127.0.0.1', port: 0 },
      logLevel: 'warn',
    });
    await dev.listen();
    const devPage = await browser.newPage();
    try {
      const link = new URL(res.json.url);
      link.host = new URL(dev.resolvedUrls!.local[0]!).host;
      await devPage.goto(link.href);
      await waitBadge('running', 30_000, devPage);
      await waitForScreen(devPage, (l) => l.some((x) => x.includes('$')), 'the shell prompt', 60_000);
      await devPage.getByRole('region', { name: 'Agent terminal' }).click();
      await devPage.keyboard.type('echo dev-$((6*7))');
      await devPage.keyboard.press('Enter');
      await waitForScreen(devPage, has('dev-42'), 'the command output through the dev server');
      // React's development double mount must not leave a second stream writing the same output.
      const lines = await screenLines(devPage);
      assert.equal(lines.filter((l) => l.trim() === 'dev-42').length, 1);
    } finally {
      await devPage.close();
      await dev.close();
      await s.api('DELETE', `/api/v1/tasks/${res.json.taskId}`, OWNER);
    }
  });
});
