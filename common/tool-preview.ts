/**
 * What a question shows of a tool use: a one-line summary (the command, the file, the URL) and a
 * detail (a diff preview, the description), both trimmed to fit a Discord message and the task
 * page, and stripped of terminal escapes and control characters (the input comes from the guest:
 * it must not redraw a terminal or a chat). No imports: the guest's driver renders with it too.
 */

export interface ToolPreview {
  summary: string;
  detail: string;
}

/** Escape sequences and control characters out (newlines and tabs stay). */
export function cleanText(s: string): string {
  return (
    s
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
      .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, '')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what we strip
      .replace(/\x1b\[[0-9;?<>=!]*[ -/]*[@-~]?/g, '')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: other control characters are dropped
      .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, '')
  );
}

/** `s` cut to `max` characters (code points), saying how much was left out. */
export function clipText(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  const note = `… (${chars.length - max} more characters)`;
  return chars.slice(0, Math.max(0, max - note.length)).join('') + note;
}

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);

/** Lines of `text`, each prefixed (a diff's `- ` and `+ `), at most `maxLines` of them. */
function prefixed(prefix: string, text: string, maxLines: number): string[] {
  const lines = text.split('\n');
  const shown = lines.slice(0, maxLines).map((l) => `${prefix}${l}`);
  if (lines.length > maxLines) shown.push(`${prefix}… (${lines.length - maxLines} more lines)`);
  return shown;
}

function diff(oldText: string, newText: string): string {
  return [...prefixed('- ', oldText, 12), ...prefixed('+ ', newText, 12)].join('\n');
}

/** The preview of a tool use, within `limits` characters. */
export function previewToolUse(
  tool: string,
  input: Record<string, unknown>,
  limits: { summaryChars: number; detailChars: number } = { summaryChars: 1000, detailChars: 1500 },
): ToolPreview {
  let summary: string;
  let detail = '';
  switch (tool) {
    case 'Bash':
      summary = str(input.command);
      detail = str(input.description);
      break;
    case 'Edit':
      summary = str(input.file_path);
      detail = diff(str(input.old_string), str(input.new_string));
      if (input.replace_all === true) detail = `(every occurrence)\n${detail}`;
      break;
    case 'MultiEdit': {
      summary = str(input.file_path);
      const edits = Array.isArray(input.edits) ? (input.edits as Record<string, unknown>[]) : [];
      detail = edits
        .slice(0, 5)
        .map((e, i) => `@@ edit ${i + 1} of ${edits.length}\n${diff(str(e?.old_string), str(e?.new_string))}`)
        .join('\n');
      break;
    }
    case 'Write': {
      summary = str(input.file_path);
      const content = str(input.content);
      const lines = content.split('\n').length;
      detail = [`(${lines} lines, ${content.length} characters)`, ...prefixed('+ ', content, 20)].join('\n');
      break;
    }
    case 'NotebookEdit':
      summary = `${str(input.notebook_path)}${input.cell_id ? ` (cell ${str(input.cell_id)})` : ''}`;
      detail = prefixed('+ ', str(input.new_source), 20).join('\n');
      break;
    case 'WebFetch':
      summary = str(input.url);
      detail = str(input.prompt);
      break;
    case 'WebSearch':
      summary = str(input.query);
      break;
    default:
      summary = JSON.stringify(input);
  }
  return {
    summary: clipText(cleanText(summary).trim() || '(no input)', limits.summaryChars),
    detail: clipText(cleanText(detail).replace(/\s+$/, ''), limits.detailChars),
  };
}
