/**
 * Terminal output as a Discord message: escapes and carriage-return redraws removed, the last
 * lines that fit, inside one code block that nothing in the output can close early.
 */
import type { TokenCounts } from '../common/task.js';
import { usageText } from '../common/usage-text.js';

export const DISCORD_MAX_CHARS = 2000;

/** What a terminal would show for these bytes, roughly: text lines, no control sequences. */
export function plainText(raw: string): string {
  const noEscapes = raw
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '') // OSC (titles, hyperlinks)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
    .replace(/\x1b\[[0-9;?<>=!]*[ -/]*[@-~]/g, '') // CSI (colours, cursor moves)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
    .replace(/\x1b[@-_]/g, '');
  return noEscapes
    .split('\n')
    .map((line) => {
      const l = line.replace(/\r+$/, '');
      // A carriage return redraws the line: keep what was written last.
      const i = l.lastIndexOf('\r');
      // biome-ignore lint/suspicious/noControlCharactersInRegex: other control characters are dropped
      return (i >= 0 ? l.slice(i + 1) : l).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    })
    .join('\n');
}

/** Breaks any run of backticks so it cannot end the surrounding code block. */
function defuseFences(s: string): string {
  return s.replace(/`{3,}/g, (m) => m.split('').join('\u200b'));
}

/** A code block with the output's last lines, `maxChars` long at most (fences included). */
export function tailBlock(raw: string, maxChars: number): string {
  const budget = maxChars - '```\n\n```'.length;
  const lines = defuseFences(plainText(raw)).replace(/\s+$/, '').split('\n');
  const kept: string[] = [];
  let size = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const cost = line.length + (kept.length ? 1 : 0);
    if (size + cost > budget) {
      // One line longer than everything: keep its end.
      if (!kept.length) kept.unshift(line.slice(line.length - budget));
      break;
    }
    kept.unshift(line);
    size += cost;
  }
  const body = kept.join('\n');
  return body.trim() ? `\`\`\`\n${body}\n\`\`\`` : '';
}

/** A thread post: a header line, then the output's tail, within Discord's 2,000 characters. */
export function threadPost(header: string, raw: string): string {
  const head = header.slice(0, 300);
  const tail = raw ? tailBlock(raw, DISCORD_MAX_CHARS - head.length - 1) : '';
  return tail ? `${head}\n${tail}` : head;
}

/** The end of a headless run, for its thread: outcome, turns, tokens and cost, then the answer. */
export function summaryPost(
  s: { result: string; isError: boolean; numTurns: number },
  t: TokenCounts & { costUsd: number },
  /** The conversation's turn (from the second on; the first is "the run"). */
  turn?: number,
): string {
  const head = `**Claude Code ${s.isError ? 'failed' : 'finished'}${turn ? ` turn ${turn}` : ''}** after ${s.numTurns} turns · tokens: ${usageText(t)}`;
  const quoted = defuseFences(s.result.trim())
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n');
  const room = DISCORD_MAX_CHARS - head.length - 1;
  return quoted ? `${head}\n${quoted.length > room ? `${quoted.slice(0, room - 1)}…` : quoted}` : head;
}
