/**
 * Screenshots of the web UI for the docs: the task page (dark and light), a suspended task, and the
 * task list, on the real stack with the local driver. Run: ./lia bench tests/tools/screenshots.ts
 */
import path from 'node:path';
import { launchBrowser, waitForScreen } from '../helpers/browser.js';
import { startTestStack } from '../helpers/stack.js';

const out = path.resolve(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const s = await startTestStack('screenshots');
const browser = await launchBrowser();
try {
  const spawn = async (prompt: string, idleTimeoutSeconds = 3600) =>
    (await s.api('POST', '/api/v1/tasks', 'u-docs', { prompt, runtime: 'shell', idleTimeoutSeconds })).json;
  const other = await spawn('refactor the parser and add tests');
  await s.api('DELETE', `/api/v1/tasks/${other.taskId}`, 'u-docs');

  // A task that the idle timer suspends, as its owner finds it.
  const idle = await spawn('write the migration for the new index', 3);
  const idlePage = await browser.newPage({ viewport: { width: 1100, height: 360 }, colorScheme: 'dark' });
  await idlePage.goto(idle.url);
  await waitForScreen(idlePage, (l) => l.some((x) => x.includes('$')), 'the prompt');
  await idlePage.getByTestId('suspended').waitFor({ timeout: 30_000 });
  await idlePage.screenshot({ path: path.join(out, 'task-suspended.png') });
  await idlePage.close();

  const task = await spawn('look around the working directory');
  for (const scheme of ['dark', 'light'] as const) {
    const page = await browser.newPage({ viewport: { width: 1100, height: 560 }, colorScheme: scheme });
    await page.goto(task.url);
    await page
      .getByTestId('status')
      .filter({ hasText: /^running$/ })
      .waitFor({ timeout: 30_000 });
    if (scheme === 'dark') {
      await page.getByRole('region', { name: 'Agent terminal' }).click();
      await page.keyboard.type('ls -la; echo "hello from $(hostname)"');
      await page.keyboard.press('Enter');
    }
    await waitForScreen(page, (l) => l.some((x) => x.includes('hello from')), 'the command output');
    await page.screenshot({ path: path.join(out, `task-${scheme}.png`) });
    if (scheme === 'dark') {
      await page.goto(new URL('/', task.url).href);
      await page.getByRole('heading', { name: 'Your tasks' }).waitFor();
      await page.screenshot({ path: path.join(out, 'list.png') });
    }
    await page.close();
  }
  await s.api('DELETE', `/api/v1/tasks/${task.taskId}`, 'u-docs');
  console.log(`screenshots written to ${out}`);
} finally {
  await browser.close();
  await s.close();
}
process.exit(0);
