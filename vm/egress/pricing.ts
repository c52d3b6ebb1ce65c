/**
 * What a model answer costs, in US dollars, from the tokens the proxy counted: list prices per
 * million tokens by model, as the Claude Code version the image pins (2.1.331) prices them in its
 * own model catalogue — so a task's cost agrees with what the agent itself reports. Cache reads
 * and writes have their own prices (writes for one hour cost more than for five minutes), and a
 * model with long-prompt pricing charges its higher rates for a whole request whose prompt
 * (uncached + cache read + cache write) is over the threshold. A model not in the table is
 * priced by its family.
 *
 * Not counted: server tools (web search, $0.01 a request), the US-only inference surcharge
 * (×1.1) and fast mode — none of which a task's Claude Code uses as Lia runs it.
 */
import type { TokenCounts } from '../../common/task.js';

interface Rates {
  input: number;
  output: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
}

interface Price extends Rates {
  longPrompt?: Rates & { above: number };
}

const tier = (input: number, output: number, cacheRead = input / 10): Price => ({
  input,
  output,
  cacheWrite5m: input * 1.25,
  cacheWrite1h: input * 2,
  cacheRead,
});

/** Model id (or the prefix of a dated id) → price. */
const MODELS: Record<string, Price> = {
  'claude-3-5-haiku': tier(0.8, 4),
  'claude-haiku-4-5': tier(1, 5),
  'claude-haiku-5-5': { ...tier(0.1, 0.5), longPrompt: { ...tier(0.5, 2.5), above: 100_000 } },
  'claude-3-5-sonnet': tier(3, 15),
  'claude-3-7-sonnet': tier(3, 15),
  'claude-sonnet-4-0': tier(3, 15),
  'claude-sonnet-4-20250514': tier(3, 15),
  'claude-sonnet-4-5': tier(3, 15),
  'claude-sonnet-4-6': tier(3, 15),
  'claude-sonnet-5': tier(2, 10),
  'claude-sonnet-5-5': tier(2, 10, 0.1),
  'claude-opus-4-0': tier(15, 75),
  'claude-opus-4-20250514': tier(15, 75),
  'claude-opus-4-1': tier(15, 75),
  'claude-opus-4-5': tier(5, 25),
  'claude-opus-4-6': tier(5, 25),
  'claude-opus-4-7': tier(5, 25),
  'claude-opus-4-8': tier(5, 25),
  'claude-opus-5': tier(5, 25),
  'claude-opus-5-5': tier(4, 20, 0.2),
  'claude-fable-5': tier(10, 50),
  'claude-fable-5-1': tier(10, 50, 0.25),
  'claude-fable-5-2': tier(8, 40, 0.2),
  'claude-mythos-5': tier(10, 50),
  'claude-mythos-5-1': tier(10, 50, 0.25),
  'claude-mythos-5-2': tier(8, 40, 0.2),
};
/** Longest id first, so `claude-opus-5-5` wins over `claude-opus-5`. */
const IDS = Object.keys(MODELS).sort((a, b) => b.length - a.length);

const FAMILIES: { family: RegExp; price: Price }[] = [
  { family: /opus/i, price: tier(5, 25) },
  { family: /sonnet/i, price: tier(3, 15) },
  { family: /haiku/i, price: tier(1, 5) },
];
const FALLBACK = tier(3, 15);

export function priceOf(model: string): Price {
  const m = model.toLowerCase();
  const id = IDS.find((i) => m === i || m.startsWith(`${i}-`) || m.startsWith(`${i}@`));
  if (id) return MODELS[id]!;
  return FAMILIES.find((f) => f.family.test(m))?.price ?? FALLBACK;
}

/**
 * The cost of one answer's tokens. `cacheCreation1hTokens` is the part of the cache writes made
 * for an hour (the rest were for five minutes); summed counts of several answers are priced as
 * if they were one.
 */
export function costUsd(model: string, t: TokenCounts & { cacheCreation1hTokens?: number }): number {
  const base = priceOf(model);
  const prompt = t.inputTokens + t.cacheReadTokens + t.cacheCreationTokens;
  const p: Rates = base.longPrompt && prompt > base.longPrompt.above ? base.longPrompt : base;
  const oneHour = Math.min(t.cacheCreation1hTokens ?? 0, t.cacheCreationTokens);
  return (
    (t.inputTokens * p.input +
      t.outputTokens * p.output +
      t.cacheReadTokens * p.cacheRead +
      (t.cacheCreationTokens - oneHour) * p.cacheWrite5m +
      oneHour * p.cacheWrite1h) /
    1_000_000
  );
}
