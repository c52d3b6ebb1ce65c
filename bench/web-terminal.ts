/**
 * The web terminal, measured in a real browser (Chromium) on loopback with the local driver:
 *   echo      keystroke → browser → API → host → PTY → back on the screen, p50 / p99 (timed in the page)
 *   terminal  a large output into the task page: MB/s until every byte arrived, and until xterm.js
 *             had parsed it all
 *   stream    the same output from Lia's stream into a plain WebSocket in a blank page (no xterm.js)
 *   bare      the same bytes through a bare WebSocket pipe (the ws package → the same browser)
 *   bare pty  a bare terminal pipe: the same command in node-pty, each read sent straight into a
 *             WebSocket (no sidecar, PostgreSQL or API), into xterm.js with the task page's
 *             options and size, and into a plain WebSocket: Lia's path against the simplest one
 *   pty       the same command in a PTY read by node-pty on the host, nothing else: the most any
 *             terminal path can carry here
 * Run: ./lia bench bench/web-terminal.ts [keystrokes] [MiB]   (defaults 300 and 20)
 */
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import pty from 'node-pty';
import type { Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { launchBrowser, waitForScreen } from '../tests/helpers/browser.js';
import { startTestStack } from '../tests/helpers/stack.js';

type Win = { liaTerminal: import('@xterm/xterm').Terminal; liaStats: { bytes: number } };

const keystrokes = Number(process.argv[2] ?? 300);
const megabytes = Number(process.argv[3] ?? 20);
const want = megabytes * 1024 * 1024;
// `fold -w 100` adds a newline per 100 bytes and the PTY turns each into \r\n; `echo` ends with one.
const expected = want + 2 * Math.ceil(want / 100) + 2;
const command = (ch: string) => `head -c ${want} /dev/zero | tr '\\0' '${ch}' | fold -w 100; echo\r`;
const mbps = (ms: number) => expected / 1e6 / (ms / 1000);

const s = await startTestStack('bench_web', { LIA__OUTPUT__RETENTION_BYTES: String(256 * 1024 * 1024) });
const browser = await launchBrowser();
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function spawnShell(): Promise<{ taskId: string; url: string }> {
  const res = await s.api('POST', '/api/v1/tasks', 'u-bench', {
    prompt: 'bench',
    runtime: 'shell',
    idleTimeoutSeconds: 3600,
  });
  if (res.status !== 201) throw new Error(JSON.stringify(res.json));
  return res.json;
}

/** Each keystroke counts as echoed when the screen's cursor moves; `cat` echoes it through the PTY. */
async function echoLatencies(page: Page): Promise<number[]> {
  await page.getByRole('region', { name: 'Agent terminal' }).click();
  await page.keyboard.type('cat');
  await page.keyboard.press('Enter');
  await new Promise((r) => setTimeout(r, 500));
  const ms = await page.evaluate(async (n) => {
    // No named helper functions in here: tsx would wrap them in a __name() the page doesn't have.
    const t = (window as unknown as Win).liaTerminal;
    const b = t.buffer;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const before = `${b.active.cursorX},${b.active.cursorY + b.active.baseY}`;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const d = t.onWriteParsed(() => {
          if (`${b.active.cursorX},${b.active.cursorY + b.active.baseY}` !== before) {
            d.dispose();
            resolve();
          }
        });
        t.input(i % 60 === 59 ? '\r' : 'x', true); // as if typed: through onData to the stream
      });
      out.push(performance.now() - t0);
    }
    return out;
  }, keystrokes);
  // End the line first: Ctrl+D ends `cat` only at the start of a line.
  await page.keyboard.press('Enter');
  await page.keyboard.press('Control+D');
  return ms;
}

/** A large output into the task page: first byte → last byte received, and → last byte parsed. */
async function intoTerminal(page: Page): Promise<{ received: number; parsed: number }> {
  return page.evaluate(
    async ({ cmd, expected }) => {
      const w = window as unknown as Win;
      const start = w.liaStats.bytes;
      w.liaTerminal.input(cmd, true);
      let t0 = 0;
      for (;;) {
        const got = w.liaStats.bytes - start;
        if (got > 0 && !t0) t0 = performance.now();
        if (got >= expected) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      const received = performance.now() - t0;
      // The write callback runs once everything written before it is parsed.
      await new Promise<void>((r) => w.liaTerminal.write('', r));
      return { received, parsed: performance.now() - t0 };
    },
    { cmd: command('a'), expected },
  );
}

/** The same output from Lia's stream into a plain WebSocket in a blank page: no terminal at all. */
async function intoPlainSocket(page: Page, task: { taskId: string; url: string }): Promise<number> {
  const token = decodeURIComponent(new URL(task.url).hash.slice('#token='.length));
  await page.goto(`${s.apiUrl}/healthz`);
  return page.evaluate(
    ({ url, cmd, expected }) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        let quiet: ReturnType<typeof setTimeout> | undefined;
        let sent = false;
        let got = 0;
        let t0 = 0;
        ws.onmessage = (e) => {
          if (typeof e.data === 'string') return;
          if (!sent) {
            // The shell's prompt: once it has been quiet a moment, start the command.
            clearTimeout(quiet);
            quiet = setTimeout(() => {
              sent = true;
              ws.send(JSON.stringify({ type: 'input', data: cmd }));
            }, 500);
            return;
          }
          if (!t0) t0 = performance.now();
          got += (e.data as ArrayBuffer).byteLength - 8;
          if (got >= expected) {
            resolve(performance.now() - t0);
            ws.close();
          }
        };
      }),
    {
      url: `${s.apiUrl.replace(/^http/, 'ws')}/api/v1/tasks/${task.taskId}/stream?from=1&token=${encodeURIComponent(token)}`,
      cmd: command('b'),
      expected,
    },
  );
}

/** The same number of bytes through a bare WebSocket pipe into the same browser. */
async function barePipe(page: Page): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as net.AddressInfo).port;
  wss.on('connection', (ws) => {
    const chunk = Buffer.alloc(64 * 1024, 97);
    for (let sent = 0; sent < expected; sent += chunk.length) ws.send(chunk);
  });
  try {
    return await page.evaluate(
      ({ port, expected }) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}`);
          ws.binaryType = 'arraybuffer';
          let got = 0;
          let t0 = 0;
          ws.onmessage = (e) => {
            if (!t0) t0 = performance.now();
            got += (e.data as ArrayBuffer).byteLength;
            if (got >= expected) resolve(performance.now() - t0);
          };
        }),
      { port, expected },
    );
  } finally {
    wss.close();
  }
}

/** The bench's command in a PTY of its own, as the sidecar runs an agent (bytes, not strings). */
function commandInPty(ch: string, size: { cols: number; rows: number }): pty.IPty {
  return pty.spawn('/bin/bash', ['-c', command(ch).replace(/\r$/, '')], {
    ...size,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    encoding: null,
  } as unknown as pty.IPtyForkOptions);
}

/**
 * A bare terminal pipe: node-pty → WebSocket → the browser, into xterm.js (the same version and
 * options as the task page, at its size) or into a plain socket. First byte → last byte received,
 * and → last byte parsed.
 */
async function bareTerminalPipe(
  page: Page,
  size: { cols: number; rows: number },
  withXterm: boolean,
): Promise<{ received: number; parsed: number }> {
  const xtermJs = fs.readFileSync(createRequire(import.meta.url).resolve('@xterm/xterm/lib/xterm.js'));
  const server = http.createServer((req, res) => {
    if (req.url === '/xterm.js') res.end(xtermJs);
    else res.end('<!doctype html><div id="t" style="width:100vw;height:100vh"></div>');
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    const p = commandInPty('d', size);
    p.onData((d) => ws.send(d as unknown as Buffer));
    // The end of the output is the end of the stream (a bare pipe has no prompt to wait for).
    p.onExit(() => ws.close());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await page.goto(`http://127.0.0.1:${port}/`);
    if (withXterm) await page.addScriptTag({ url: '/xterm.js' });
    return await page.evaluate(
      ({ port, size, withXterm }) =>
        new Promise<{ received: number; parsed: number }>((resolve) => {
          const X = (window as unknown as { Terminal?: typeof import('@xterm/xterm').Terminal }).Terminal;
          const term =
            withXterm && X
              ? new X({ cursorBlink: true, fontSize: 14, scrollback: 10_000, ...size })
              : undefined;
          term?.open(document.getElementById('t')!);
          const ws = new WebSocket(`ws://127.0.0.1:${port}`);
          ws.binaryType = 'arraybuffer';
          let t0 = 0;
          let last = 0;
          ws.onmessage = (e) => {
            last = performance.now();
            if (!t0) t0 = last;
            term?.write(new Uint8Array(e.data as ArrayBuffer));
          };
          ws.onclose = () => {
            const received = last - t0;
            if (!term) return resolve({ received, parsed: received });
            term.write('', () => resolve({ received, parsed: performance.now() - t0 }));
          };
        }),
      { port, size, withXterm },
    );
  } finally {
    wss.close();
    server.close();
  }
}

/** The PTY alone: the same output, read by node-pty as the sidecar reads it. */
function ptyAlone(): Promise<number> {
  return new Promise((resolve) => {
    const p = commandInPty('c', { cols: 120, rows: 30 });
    let t0 = 0;
    p.onData(() => {
      if (!t0) t0 = performance.now();
    });
    p.onExit(() => resolve(performance.now() - t0));
  });
}

try {
  const alone = await ptyAlone();
  const task = await spawnShell();
  const page = await browser.newPage();
  await page.goto(task.url);
  await waitForScreen(page, (l) => l.some((x) => x.includes('$')), 'the prompt', 30_000);
  const echo = await echoLatencies(page);
  const term = await intoTerminal(page);
  const size = await page.evaluate(() => {
    const t = (window as unknown as Win).liaTerminal;
    return { cols: t.cols, rows: t.rows };
  });
  await page.close();
  const bareTermPage = await browser.newPage();
  const bareTerm = await bareTerminalPipe(bareTermPage, size, true);
  await bareTermPage.close();
  await s.api('DELETE', `/api/v1/tasks/${task.taskId}`, 'u-bench');

  // A second task, so that no terminal page is receiving the same output meanwhile.
  const other = await spawnShell();
  const blank = await browser.newPage();
  const plain = await intoPlainSocket(blank, other);
  const bare = await barePipe(blank);
  const barePlain = await bareTerminalPipe(blank, size, false);
  await s.api('DELETE', `/api/v1/tasks/${other.taskId}`, 'u-bench');

  const mb = (expected / 1e6).toFixed(1);
  console.log(
    `web terminal, Chromium on loopback, local driver (${keystrokes} keystrokes, ${mb} MB of output)`,
  );
  console.log(
    `echo      p50 ${pct(echo, 50).toFixed(1)} ms   p99 ${pct(echo, 99).toFixed(1)} ms   max ${Math.max(...echo).toFixed(1)} ms`,
  );
  console.log(
    `terminal  ${mbps(term.received).toFixed(1)} MB/s received (${(term.received / 1000).toFixed(2)} s), ` +
      `${mbps(term.parsed).toFixed(1)} MB/s parsed by xterm.js (${(term.parsed / 1000).toFixed(2)} s)`,
  );
  console.log(
    `stream    ${mbps(plain).toFixed(1)} MB/s into a plain WebSocket (${(plain / 1000).toFixed(2)} s)`,
  );
  console.log(`bare ws   ${mbps(bare).toFixed(1)} MB/s (${(bare / 1000).toFixed(2)} s)`);
  console.log(
    `bare pty  ${mbps(bareTerm.parsed).toFixed(1)} MB/s into xterm.js (${(bareTerm.parsed / 1000).toFixed(2)} s), ` +
      `${mbps(barePlain.received).toFixed(1)} MB/s into a plain WebSocket (${(barePlain.received / 1000).toFixed(2)} s)`,
  );
  console.log(
    `ratios    terminal page / bare pty into xterm.js ${((100 * bareTerm.parsed) / term.parsed).toFixed(0)}%, ` +
      `stream / bare pty into a plain socket ${((100 * barePlain.received) / plain).toFixed(0)}%`,
  );
  console.log(`pty       ${mbps(alone).toFixed(1)} MB/s from a PTY alone (${(alone / 1000).toFixed(2)} s)`);
} finally {
  await browser.close();
  await s.close();
}
process.exit(0);
