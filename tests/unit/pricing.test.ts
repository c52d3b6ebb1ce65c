/** Prices per model as Claude Code 2.1.331 has them, so a task's cost agrees with the agent's own. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costUsd, priceOf } from '../../vm/egress/pricing.js';

const t = (inputTokens: number, outputTokens: number, cacheReadTokens = 0, cacheCreationTokens = 0) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens,
  cacheCreationTokens,
});
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('the model, not only its family: Opus 5.5 is not priced as Opus 4.5', () => {
  // Figures from a real run: Claude Code's own total_cost_usd was $0.0745012.
  close(costUsd('claude-opus-5-5', t(5422, 160, 9541, 9541)), 0.0745012);
  close(costUsd('claude-opus-4-5', t(1_000_000, 0)), 5);
  close(costUsd('claude-opus-4-1-20250805', t(1_000_000, 0)), 15);
  close(costUsd('claude-opus-4-20250514', t(0, 1_000_000)), 75);
  close(costUsd('claude-sonnet-4-5-20250929', t(0, 0, 1_000_000)), 0.3);
  close(costUsd('claude-sonnet-5-5', t(0, 0, 1_000_000)), 0.1);
  assert.equal(priceOf('claude-opus-5').input, 5);
  assert.equal(priceOf('claude-opus-5-5').input, 4);
});

test('cache writes: five minutes at 1.25× input, an hour at 2×', () => {
  close(costUsd('claude-sonnet-4-5', t(0, 0, 0, 1_000_000)), 3.75);
  close(
    costUsd('claude-sonnet-4-5', { ...t(0, 0, 0, 1_000_000), cacheCreation1hTokens: 400_000 }),
    0.6 * 3.75 + 0.4 * 6,
  );
});

test('long-prompt pricing applies to the whole request past the threshold', () => {
  close(costUsd('claude-haiku-5-5', t(100_000, 1000)), 0.1 * 0.1 + 0.0005);
  close(
    costUsd('claude-haiku-5-5', t(50_000, 1000, 50_001)),
    (50_000 * 0.5 + 1000 * 2.5 + 50_001 * 0.05) / 1e6,
  );
});

test('an unknown model is priced by its family, else as Sonnet', () => {
  close(costUsd('claude-opus-9', t(1_000_000, 0)), 5);
  close(costUsd('claude-haiku-9', t(1_000_000, 0)), 1);
  close(costUsd('something-else', t(1_000_000, 0)), 3);
});
