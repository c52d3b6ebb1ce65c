/** A real browser for the web UI tests: Debian's Chromium driven by playwright-core. */
import fs from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.LIA_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (the test command installs it)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** The terminal's whole buffer (scrollback included), one string per line, as xterm.js holds it. */
export function screenLines(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const t = (window as unknown as { liaTerminal?: import('@xterm/xterm').Terminal }).liaTerminal;
    if (!t) return [];
    const b = t.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? '');
    return out;
  });
}

export async function waitForScreen(
  page: Page,
  pred: (lines: string[]) => boolean,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await screenLines(page);
    if (pred(lines)) return lines;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; the terminal shows:\n${lines.filter(Boolean).slice(-15).join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
