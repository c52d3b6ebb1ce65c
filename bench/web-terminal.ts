/**
 * The web terminal, measured in a real browser (Chromium) on loopback with the local driver:
 *   echo      keystroke → API → host → PTY → back on the screen, p50 / p99 (timed in the page)
 *   output    throughput of a large output into the page, MB/s
 *   bare      the same bytes through a bare WebSocket pipe (ws → the same browser), for comparison
 * Run: ./lia bench bench/web-terminal.ts [keystrokes] [MB]   (defaults 300 and 20)
 */
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { launchBrowser, waitForScreen } from '../tests/helpers/browser.js';
import { startTestStack } from '../tests/helpers/stack.js';

const keystrokes = Number(process.argv[2] ?? 300);
const megabytes = Number(process.argv[3] ?? 20);
const s = await startTestStack('bench_web', { LIA__OUTPUT__RETENTION_BYTES: String(256 * 1024 * 1024) });
const browser = await launchBrowser();
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

try {
  const task = (
    await s.api('POST', '/api/v1/tasks', 'u-bench', {
      prompt: 'bench',
      runtime: 'shell',
      idleTimeoutSeconds: 3600,
    })
  ).json;
  const page = await browser.newPage();
  await page.goto(task.url);
  await waitForScreen(page, (l) => l.some((x) => x.includes('$')), 'the prompt', 30_000);
  await page.getByRole('region', { name: 'Agent terminal' }).click();
  await page.keyboard.type('cat');
  await page.keyboard.press('Enter');
  await new Promise((r) => setTimeout(r, 500));

  // Each keystroke goes in as the user's input; it counts as echoed when the screen's cursor moves.
  const echoMs: number[] = await page.evaluate(async (n) => {
    const t = (window as unknown as { liaTerminal: import('@xterm/xterm').Terminal }).liaTerminal;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const ch = i % 60 === 59 ? '\r' : 'x';
      const before = `${t.buffer.active.cursorX},${t.buffer.active.cursorY + t.buffer.active.baseY}`;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const d = t.onWriteParsed(() => {
          if (`${t.buffer.active.cursorX},${t.buffer.active.cursorY + t.buffer.active.baseY}` !== before) {
            d.dispose();
            resolve();
          }
        });
        t.input(ch, true);
      });
      out.push(performance.now() - t0);
    }
    return out;
  }, keystrokes);
  await page.keyboard.press('Control+D');

  // Output throughput: a known amount of output, timed in the page from its first to its last byte.
  const bytes = megabytes * 1024 * 1024;
  const through = await page.evaluate(async (want) => {
    const stats = (window as unknown as { liaStats: { bytes: number } }).liaStats;
    const start = stats.bytes;
    await new Promise<void>((r) => setTimeout(r, 0));
    const t = (window as unknown as { liaTerminal: import('@xterm/xterm').Terminal }).liaTerminal;
    t.input(`head -c ${want} /dev/zero | tr '\\0' 'a' | fold -w 100; echo\r`, true);
    let t0 = 0;
    for (;;) {
      const got = stats.bytes - start;
      if (got > 0 && !t0) t0 = performance.now();
      if (got >= want) return { ms: performance.now() - t0, got };
      await new Promise((r) => setTimeout(r, 5));
    }
  }, bytes);
  const mbps = bytes / 1e6 / (through.ms / 1000);

  // The same bytes through a bare WebSocket pipe into the same browser.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as net.AddressInfo).port;
  wss.on('connection', (ws) => {
    const chunk = Buffer.alloc(64 * 1024, 97);
    for (let sent = 0; sent < bytes; sent += chunk.length) ws.send(chunk);
  });
  const bare = await page.evaluate(
    ({ port, want }) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}`);
        ws.binaryType = 'arraybuffer';
        let got = 0;
        let t0 = 0;
        ws.onmessage = (e) => {
          if (!t0) t0 = performance.now();
          got += (e.data as ArrayBuffer).byteLength;
          if (got >= want) resolve(performance.now() - t0);
        };
      }),
    { port, want: bytes },
  );
  wss.close();
  const bareMbps = bytes / 1e6 / (bare / 1000);

  console.log(
    `web terminal, Chromium on loopback, local driver (${keystrokes} keystrokes, ${megabytes} MiB of output)`,
  );
  console.log(
    `echo      p50 ${pct(echoMs, 50).toFixed(1)} ms   p99 ${pct(echoMs, 99).toFixed(1)} ms   max ${Math.max(...echoMs).toFixed(1)} ms`,
  );
  console.log(`output    ${mbps.toFixed(1)} MB/s into the page (${(through.ms / 1000).toFixed(2)} s)`);
  console.log(
    `bare ws   ${bareMbps.toFixed(1)} MB/s   → Lia carries ${((mbps / bareMbps) * 100).toFixed(0)}% of a bare pipe`,
  );
  await s.api('DELETE', `/api/v1/tasks/${task.taskId}`, 'u-bench');
} finally {
  await browser.close();
  await s.close();
}
process.exit(0);
