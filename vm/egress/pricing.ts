/**
 * An estimate of what a task's model use costs, from the tokens the proxy counted. US dollars per
 * million tokens, by model family (the list prices of the current models); cache reads cost a
 * tenth of input, cache writes a quarter more.
 */
import type { TokenCounts } from '../../common/task.js';

const PER_MTOK: { family: RegExp; input: number; output: number }[] = [
  { family: /opus/i, input: 5, output: 25 },
  { family: /sonnet/i, input: 3, output: 15 },
  { family: /haiku/i, input: 1, output: 5 },
];
const FALLBACK = PER_MTOK[1]!;

export function costUsd(model: string, t: TokenCounts): number {
  const p = PER_MTOK.find((x) => x.family.test(model)) ?? FALLBACK;
  return (
    (t.inputTokens * p.input +
      t.outputTokens * p.output +
      t.cacheReadTokens * p.input * 0.1 +
      t.cacheCreationTokens * p.input * 1.25) /
    1_000_000
  );
}
