/**
 * The local side of an attached terminal: raw mode in and out, the window's size, Lia's own
 * status lines, and putting the terminal back as it was on the way out.
 */
import type { WriteStream } from 'node:tty';

/** Ctrl-] (as telnet's escape): a byte no shell or Claude Code needs, so it can mean "detach". */
export const DETACH_BYTE = 0x1d;
export const DETACH_KEY_NAME = 'Ctrl-]';

/** The bounds the API takes (LIMITS.terminal in common/task.ts). */
const COLS = { min: 2, max: 1000 };
const ROWS = { min: 1, max: 500 };

export function windowSize(out: WriteStream): { cols: number; rows: number } | undefined {
  if (!out.isTTY || !out.columns || !out.rows) return undefined;
  const clamp = (v: number, b: { min: number; max: number }) => Math.min(b.max, Math.max(b.min, v));
  return { cols: clamp(out.columns, COLS), rows: clamp(out.rows, ROWS) };
}

/**
 * Lia's own lines between the agent's output: always `\r\n[lia] …\r\n`, so they start on a line
 * of their own in raw mode and are easy to tell from the agent's bytes. They go to stderr, so
 * `./lia attach … > file` keeps only the agent's output.
 */
export function say(message: string, atStart = false): void {
  process.stderr.write(`${atStart ? '' : '\r\n'}[lia] ${message.replace(/\r?\n/g, '\r\n')}\r\n`);
}

/**
 * Terminal modes the agent's programs switch on (alternate screen, mouse reporting, bracketed
 * paste, application cursor keys, a hidden cursor), followed through the output so that leaving
 * puts back only what was changed: a shell left in bracketed-paste or mouse mode would answer
 * the next click or paste with escape codes.
 */
export class ModeTracker {
  private readonly on = new Set<number>();
  private cursorHidden = false;
  /** Modes that stay on until turned off again (1049/1047/47: the alternate screen). */
  private static readonly TRACKED = new Set([
    1, 47, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1047, 1049, 2004,
  ]);

  see(bytes: Buffer): void {
    // A mode switch split across two chunks is missed; the next switch of it is seen.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: escape codes are what it reads
    for (const m of bytes.toString('latin1').matchAll(/\x1b\[\?([\d;]+)([hl])/g)) {
      for (const n of m[1]!.split(';').map(Number)) {
        if (n === 25) this.cursorHidden = m[2] === 'l';
        else if (ModeTracker.TRACKED.has(n)) m[2] === 'h' ? this.on.add(n) : this.on.delete(n);
      }
    }
  }

  /** The escape codes that undo what is switched on (empty when nothing is). */
  reset(): string {
    let out = '';
    // The alternate screen first, so what follows is written on the normal screen.
    for (const n of [1049, 1047, 47]) if (this.on.has(n)) out += `\x1b[?${n}l`;
    for (const n of this.on) if (![1049, 1047, 47].includes(n)) out += `\x1b[?${n}l`;
    if (this.cursorHidden) out += '\x1b[?25h';
    return out ? `${out}\x1b[0m` : '';
  }
}

/** Raw mode on stdin while attached: every key goes to the task, Ctrl-C included. */
export function enterRaw(): () => void {
  const stdin = process.stdin;
  if (!stdin.isTTY) return () => {};
  stdin.setRawMode(true);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    stdin.setRawMode(false);
  };
}
