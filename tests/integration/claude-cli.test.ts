/**
 * The real Claude Code CLI (the version the guest image pins), on the host, through the real
 * egress proxy, against the model-API stand-in with prompt caching and compression on — each
 * answer in the next of gzip, br and deflate the CLI accepts. No VM: what is checked is the
 * proxy and the meter under what the CLI really sends (routes, headers, accept-encoding):
 * the CLI gets its answers and runs its tool, nothing it calls is refused, and the tokens and
 * cost the proxy metered match, to the token, what the stand-in reported for every answer.
 * Then a spent budget: the CLI shows Lia's message and does not retry.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CLAUDE_ENV, PLACEHOLDER_KEY } from '../../activities/claude-runtime.js';
import { costUsd } from '../../vm/egress/pricing.js';
import { type BudgetAnswer, EgressProxy } from '../../vm/egress/proxy.js';
import type { ModelUsage } from '../../vm/egress/usage-meter.js';
import { ensureClaudeCli } from '../helpers/claude-cli.js';
import { ModelStandIn } from '../standins/model/anthropic-standin.js';

const KEY = 'sk-ant-host-only-key-cli-0123456789abcdef';
const TASK = 't_claudecli2';
const model = new ModelStandIn(
  KEY,
  { name: 'Bash', input: { command: 'echo lia-cli-$((6*7)) > out.txt', description: 'Write the file' } },
  'Done: the file is written.',
  { caching: true, compression: 'rotate', pings: true, thinking: 'auto' },
);
let claude: string;
let proxy: EgressProxy;
let port = 0;
let budget: BudgetAnswer = { ok: true };
const metered: ModelUsage[] = [];
const refused: string[] = [];
let budgetRefusals = 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lia-claude-cli-'));

before(async () => {
  claude = await ensureClaudeCli();
  await model.start();
  proxy = new EgressProxy({
    modelBaseUrl: model.url,
    apiKey: KEY,
    allowHosts: [],
    budget: { check: async () => budget },
  });
  proxy.on('usage', (_id: string, u: ModelUsage) => metered.push(u));
  proxy.on('refused', (_id: string, m: string) => refused.push(m));
  proxy.on('budget-refused', () => budgetRefusals++);
  port = await proxy.open(TASK);
});
after(async () => {
  await proxy.closeAll();
  await model.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** `claude -p` as a headless task runs it (activities/claude-runtime.ts), the proxy where the guest finds it. */
async function runClaude(name: string, prompt: string) {
  const work = path.join(tmp, name);
  const home = path.join(work, '.home');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(
    path.join(home, '.claude.json'),
    JSON.stringify({
      hasCompletedOnboarding: true,
      bypassPermissionsModeAccepted: true,
      customApiKeyResponses: { approved: [PLACEHOLDER_KEY.slice(-20)], rejected: [] },
      projects: { [work]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true } },
    }),
  );
  const proxyUrl = `http://127.0.0.1:${port}`;
  const child = spawn(
    claude,
    ['-p', prompt, '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions'],
    {
      cwd: work,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        LANG: 'C.UTF-8',
        ...CLAUDE_ENV,
        ANTHROPIC_BASE_URL: proxyUrl,
        HTTP_PROXY: proxyUrl,
        HTTPS_PROXY: proxyUrl,
        NO_PROXY: 'localhost,127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearTimeout(timer);
  const events = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
  const result = events.find((e) => e.type === 'result');
  assert.ok(result, `no result event (exit ${code}):\n${out.slice(-2000)}\n${err.slice(-2000)}`);
  return { code, result, work, events };
}

const sum = (us: ModelUsage[]) => ({
  input: us.reduce((n, u) => n + u.inputTokens, 0),
  output: us.reduce((n, u) => n + u.outputTokens, 0),
  cacheRead: us.reduce((n, u) => n + u.cacheReadTokens, 0),
  cacheCreation: us.reduce((n, u) => n + u.cacheCreationTokens, 0),
});

for (const compression of ['rotate', 'deflate'] as const) {
  test(`the real CLI through the proxy: cached answers in ${compression === 'rotate' ? 'gzip, then br' : 'deflate'}, metered to the token`, async () => {
    model.options.compression = compression;
    const from = model.requests.length;
    const meteredFrom = metered.length;
    const { code, result, work, events } = await runClaude(`run-${compression}`, 'Write the file, please.');
    assert.equal(code, 0, JSON.stringify(result));
    assert.equal(result.is_error, false, JSON.stringify(result));
    assert.equal(result.result, 'Done: the file is written.');
    assert.equal(fs.readFileSync(path.join(work, 'out.txt'), 'utf8').trim(), 'lia-cli-42', 'the tool ran');
    assert.ok(
      events.some((e) => e.type === 'system' && e.claude_code_version),
      'the CLI said its version',
    );

    // Everything the CLI called was a route the proxy forwards; the stand-in served it all.
    assert.deepEqual(refused, []);
    assert.deepEqual(model.unserved, []);
    const requests = model.requests.slice(from);
    const served = requests.filter((r) => r.usage);
    const mine = metered.slice(meteredFrom);
    assert.ok(served.length >= 2, JSON.stringify(model.requests.map((r) => r.kind)));
    // The CLI accepts zstd too; the model API was asked only for what the meter reads.
    assert.ok(
      requests.every((r) => r.acceptEncoding === 'gzip, deflate, br'),
      JSON.stringify(requests.map((r) => r.acceptEncoding)),
    );
    const encodings = new Set(served.map((r) => r.encoding));
    assert.deepEqual([...encodings], compression === 'rotate' ? ['gzip', 'br'] : ['deflate']);
    assert.ok(requests.every((r) => r.key === KEY && !r.closedEarly));

    // Metered: every answer, to the token, cache reads and writes included; the cost likewise.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(mine.length, served.length);
    const want = {
      input: served.reduce((n, r) => n + r.usage!.input, 0),
      output: served.reduce((n, r) => n + r.usage!.output, 0),
      cacheRead: served.reduce((n, r) => n + r.usage!.cacheRead, 0),
      cacheCreation: served.reduce((n, r) => n + r.usage!.cacheCreation, 0),
    };
    assert.deepEqual(sum(mine), want);
    assert.ok(want.cacheRead > 0 && want.cacheCreation > 0);
    const wantCost = served.reduce(
      (n, r) =>
        n +
        costUsd(r.model ?? '', {
          inputTokens: r.usage!.input,
          outputTokens: r.usage!.output,
          cacheReadTokens: r.usage!.cacheRead,
          cacheCreationTokens: r.usage!.cacheCreation,
        }),
      0,
    );
    const got = mine.reduce((n, u) => n + costUsd(u.model, u), 0);
    assert.ok(Math.abs(got - wantCost) < 1e-12, `cost ${got} vs ${wantCost}`);
    // What the CLI itself counted and priced is what the proxy counted and Lia priced.
    const cli = result.usage as Record<string, number>;
    console.log(
      `[claude-cli] ${served.length} answers (${[...encodings].join(', ')}; ${served.map((r) => r.model).join(', ')}); metered ${JSON.stringify(sum(mine))}, $${got.toFixed(6)}; the CLI's own count ${JSON.stringify({ input: cli.input_tokens, output: cli.output_tokens, cacheRead: cli.cache_read_input_tokens, cacheCreation: cli.cache_creation_input_tokens })}, $${result.total_cost_usd}`,
    );
    assert.deepEqual(
      {
        input: cli.input_tokens,
        output: cli.output_tokens,
        cacheRead: cli.cache_read_input_tokens,
        cacheCreation: cli.cache_creation_input_tokens,
      },
      sum(mine),
    );
    assert.ok(
      Math.abs(result.total_cost_usd - got) < 1e-9,
      `the CLI says $${result.total_cost_usd}, Lia $${got}`,
    );
    assert.equal(proxy.busy(TASK), false);
  });
}

test("a spent budget: the CLI shows Lia's message once and does not retry", async () => {
  const message = 'Lia: this task has used its model budget (100 of 100 tokens, LIA__QUOTA__TOKENS_PER_TASK)';
  budget = { ok: false, message };
  const before = model.requests.length;
  const { result } = await runClaude('budget', 'Anything.');
  assert.equal(result.is_error, true);
  assert.ok(String(result.result).includes(message), String(result.result));
  assert.equal(model.requests.length, before, 'nothing reached the model API');
  console.log(`[claude-cli] budget refusals: ${budgetRefusals}; the CLI said: ${result.result}`);
  assert.equal(budgetRefusals, 1, 'one refusal: the CLI did not retry');
  budget = { ok: true };
});
