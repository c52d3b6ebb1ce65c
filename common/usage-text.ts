/**
 * Tokens as people read them, for every view (Discord, the thread summary, the web page, the
 * CLI): the input is all of it — uncached, read from the cache and written to it — with the parts
 * where there is room. No runtime import: the web page bundles this file.
 */
import type { TokenCounts } from './task.js';

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const totalInput = (t: TokenCounts) => t.inputTokens + t.cacheReadTokens + t.cacheCreationTokens;

/** "12,345 in" alone, or with its parts: "12,345 in (1,200 uncached · 10,000 cache read · 1,145 cache write)". */
export function inputText(t: TokenCounts, parts = true): string {
  const total = `${n(totalInput(t))} in`;
  if (!parts || (t.cacheReadTokens === 0 && t.cacheCreationTokens === 0)) return total;
  return `${total} (${n(t.inputTokens)} uncached · ${n(t.cacheReadTokens)} cache read · ${n(t.cacheCreationTokens)} cache write)`;
}

/** All the input a model saw: uncached, read from the cache, written to it. */
export function totalInputText(t: TokenCounts): string {
  return n(totalInput(t));
}

/** "12,345 in (…) · 160 out · about $0.0123" */
export function usageText(t: TokenCounts & { costUsd: number }, parts = true): string {
  return `${inputText(t, parts)} · ${n(t.outputTokens)} out · about $${t.costUsd.toFixed(4)}`;
}
