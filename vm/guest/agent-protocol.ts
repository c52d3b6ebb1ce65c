/**
 * The agent's side door to the sidecar, inside the guest: a Unix socket only the agent's user (and
 * root) can open, carrying one JSON object per line. Claude Code's permission hook asks its
 * question there and blocks until the answer comes back from the host; the headless conversation
 * driver takes its next turn there, and hears of questions and answers to show them.
 *
 *   hook → sidecar     {"type":"ask","tool":"Bash","input":{…},"toolUseId":"…"}
 *   sidecar → hook     {"type":"answer","decision":"allow"|"deny","message":"…"}
 *   driver → sidecar   {"type":"watch"}   then   {"type":"next"} whenever it is idle
 *   sidecar → driver   {"type":"turn","n":2,"text":"…"}   (one per "next")
 *                      {"type":"question","id":"q_…","tool":"Bash","input":{…}}
 *                      {"type":"answered","id":"q_…","decision":"allow"|"deny","note":"…"}
 *
 * No imports: bundled into the sidecar and into the guest scripts alike.
 */

export type AgentRequest =
  | { type: 'ask'; tool: string; input: Record<string, unknown>; toolUseId?: string }
  | { type: 'watch' }
  | { type: 'next' };

export type AgentEvent =
  | { type: 'answer'; decision: 'allow' | 'deny'; message: string }
  | { type: 'turn'; n: number; text: string }
  | { type: 'question'; id: string; tool: string; input: Record<string, unknown> }
  | { type: 'answered'; id: string; decision: 'allow' | 'deny'; note: string };

/** A line longer than this drops the connection (a turn's text is at most 100,000 characters). */
export const MAX_LINE_BYTES = 2 * 1024 * 1024;

/** Where the sidecar listens, and tells the agent in its environment (LIA_AGENT_SOCKET). */
export const AGENT_SOCKET_ENV = 'LIA_AGENT_SOCKET';

/** Splits a byte stream into JSON lines; throws on a line over MAX_LINE_BYTES or one that is not JSON. */
export class LineReader {
  private parts: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let rest = chunk;
    for (;;) {
      const nl = rest.indexOf(10);
      if (nl < 0) break;
      const line = Buffer.concat([...this.parts, rest.subarray(0, nl)]).toString('utf8');
      this.parts = [];
      this.size = 0;
      rest = rest.subarray(nl + 1);
      if (line.trim()) out.push(JSON.parse(line));
    }
    if (rest.length) {
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
      if (this.size > MAX_LINE_BYTES) throw new Error(`a line longer than ${MAX_LINE_BYTES} bytes`);
    }
    return out;
  }
}

export const line = (m: AgentRequest | AgentEvent): string => `${JSON.stringify(m)}\n`;

/**
 * A tool's input made small enough to travel: long strings cut (saying how much), long lists
 * shortened, deep nesting flattened. The host only shows a preview of it.
 */
export function shrink(value: unknown, maxString = 8000, depth = 0): unknown {
  if (typeof value === 'string')
    return value.length > maxString
      ? `${value.slice(0, maxString)}… (${value.length - maxString} more characters)`
      : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 6) return '(nested too deep)';
  if (Array.isArray(value)) {
    const kept = value.slice(0, 50).map((v) => shrink(v, maxString, depth + 1));
    if (value.length > 50) kept.push(`(${value.length - 50} more items)`);
    return kept;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value).slice(0, 50)) out[k] = shrink(v, maxString, depth + 1);
  return out;
}

/** Shrinks until the JSON fits in `maxBytes`. */
export function shrinkToFit(input: Record<string, unknown>, maxBytes: number): Record<string, unknown> {
  for (const max of [8000, 2000, 500, 100]) {
    const s = shrink(input, max) as Record<string, unknown>;
    if (Buffer.byteLength(JSON.stringify(s)) <= maxBytes) return s;
  }
  return { note: '(the tool input was too large to show)' };
}
