/**
 * The model-API stand-in's agent: it asks for tools the way the real Messages API does (a
 * `tool_use` block, `stop_reason: "tool_use"`, then the next request carries the `tool_result`),
 * driven by what the conversation says, so a test can script a whole conversation in its prompt
 * and follow-ups:
 *
 *   [[Bash {"command":"echo hi > f.txt"}]]        asks for that tool with that input
 *   [[Edit {"file_path":"f.txt","old_string":"hi","new_string":"ho"}]]
 *   ($CWD in the input stands for the working directory, from Claude Code's system prompt)
 *   [[recall]]                                    the final answer lists the commands run earlier
 *                                                 in the session (it remembers the turns before)
 *
 * A turn is everything since the last user message that is not only tool results. Its steps: a
 * `Read` of PROMPT.md when the turn's text points there (as Claude Code's real model would), then
 * the directives found in the turn's text and in the tool results so far (the file read), in
 * order, one tool call per response. When every step has been asked for, the final answer says
 * what became of each: run, or refused and why (the tool result's error, e.g. a hook's denial).
 */

export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

type Content =
  | string
  | {
      type: string;
      text?: string;
      content?: unknown;
      is_error?: boolean;
      name?: string;
      input?: unknown;
      id?: string;
      tool_use_id?: string;
    }[];
interface Message {
  role: string;
  content: Content;
}

const DIRECTIVE = /\[\[(\w+)(?:\s+(\{.*?\}))?\]\]/g;

const blocksOf = (c: Content) =>
  typeof c === 'string' ? [{ type: 'text', text: c }] : Array.isArray(c) ? c : [];
const textOf = (v: unknown): string =>
  typeof v === 'string'
    ? v
    : Array.isArray(v)
      ? v
          .map((b) =>
            b && typeof b === 'object' && 'text' in b ? String((b as { text: unknown }).text) : '',
          )
          .join('')
      : '';

/** Whether a user message starts a turn (it has text, not only tool results). */
const startsTurn = (m: Message) =>
  m.role === 'user' &&
  blocksOf(m.content).some(
    (b) => b.type === 'text' && !/^<system-reminder>/.test(String(b.text ?? '').trim()),
  );

function directives(text: string, cwd: string): { name: string; input: Record<string, unknown> }[] {
  const out: { name: string; input: Record<string, unknown> }[] = [];
  // Read tool results number their lines ("     3→[[Bash …]]"): directives are found anywhere.
  for (const m of text.matchAll(DIRECTIVE)) {
    const name = m[1]!;
    if (name === 'recall') continue;
    let input: Record<string, unknown> = {};
    try {
      // $CWD: the working directory (Claude Code's file tools take absolute paths).
      input = m[2] ? JSON.parse(m[2].replaceAll('$CWD', cwd)) : {};
    } catch {
      continue;
    }
    out.push({ name, input });
  }
  return out;
}

let counter = 0;
const toolUseId = () =>
  `toolu_01${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 10)}`;

/** The assistant's next content for this conversation. */
export function scriptedReply(
  messages: Message[],
  system: string,
  cwdHint = 'PROMPT.md',
): { kind: 'tool_call' | 'final'; blocks: Block[] } {
  let start = 0;
  for (let i = messages.length - 1; i >= 0; i--)
    if (startsTurn(messages[i]!)) {
      start = i;
      break;
    }
  const turn = messages.slice(start);
  const turnText = blocksOf(turn[0]!.content)
    .map((b) => String(b.text ?? ''))
    .join('\n');
  const uses: { id: string; name: string; input: unknown }[] = [];
  const results = new Map<string, { text: string; isError: boolean }>();
  let resultText = '';
  for (const m of turn)
    for (const b of blocksOf(m.content)) {
      if (m.role === 'assistant' && b.type === 'tool_use')
        uses.push({ id: String(b.id), name: String(b.name), input: b.input });
      if (m.role === 'user' && b.type === 'tool_result') {
        const t = textOf(b.content);
        results.set(String(b.tool_use_id), { text: t, isError: b.is_error === true });
        resultText += `\n${t}`;
      }
    }
  const steps: { name: string; input: Record<string, unknown> }[] = [];
  // Claude Code's system prompt says where it works; its Read takes absolute paths.
  const cwd = /Working directory: (\S+)/.exec(system)?.[1] ?? '.';
  if (turnText.includes(cwdHint)) steps.push({ name: 'Read', input: { file_path: `${cwd}/${cwdHint}` } });
  steps.push(...directives(turnText, cwd), ...directives(resultText, cwd));
  if (uses.length < steps.length) {
    const s = steps[uses.length]!;
    const say = s.name === 'Read' ? 'I will read the task first.' : `I will use ${s.name} now.`;
    return {
      kind: 'tool_call',
      blocks: [
        { type: 'text', text: say },
        { type: 'tool_use', id: toolUseId(), name: s.name, input: s.input },
      ],
    };
  }
  const lines: string[] = [];
  for (const u of uses) {
    if (u.name === 'Read') continue;
    const r = results.get(u.id);
    const what = `${u.name} ${u.name === 'Bash' ? (u.input as { command?: string }).command : JSON.stringify(u.input)}`;
    if (!r) lines.push(`${what}: no result.`);
    else if (r.isError)
      lines.push(`I could not run ${what}: it was refused (${r.text.split('\n')[0]!.slice(0, 300)}).`);
    else
      lines.push(
        `Ran ${what}${r.text.trim() ? `, which said: ${r.text.trim().split('\n')[0]!.slice(0, 200)}` : ''}.`,
      );
  }
  if (/\[\[recall\]\]/.test(turnText + resultText)) {
    const earlier: string[] = [];
    for (const m of messages.slice(0, start))
      for (const b of blocksOf(m.content))
        if (m.role === 'assistant' && b.type === 'tool_use' && b.name === 'Bash')
          earlier.push(String((b.input as { command?: string }).command));
    lines.push(
      earlier.length
        ? `Earlier in this session I ran: ${earlier.join(' ; ')}`
        : 'I remember nothing earlier in this session.',
    );
  }
  return {
    kind: 'final',
    blocks: [{ type: 'text', text: lines.length ? `Done. ${lines.join(' ')}` : 'Done: nothing to run.' }],
  };
}
