/**
 * Syntax colouring for the diff view: highlight.js grammars (through lowlight, which returns a
 * tree, not HTML), so the guest's text is only ever rendered as React text nodes — never as
 * markup. A hunk's two sides are coloured as wholes (a comment that spans lines stays one), then
 * cut into lines.
 */
import { common, createLowlight } from 'lowlight';

const lowlight = createLowlight(common);

/** A run of text and the highlight.js classes it has (empty: plain). */
export interface Segment {
  text: string;
  className: string;
}

const BY_NAME: Record<string, string> = {
  dockerfile: 'dockerfile',
  makefile: 'makefile',
  'cmakelists.txt': 'cmake',
};

/** The grammar for a file, from its name (an extension highlight.js knows as an alias), if any. */
export function languageOf(path: string): string | undefined {
  const base = path.split('/').pop()!.toLowerCase();
  if (BY_NAME[base]) return BY_NAME[base];
  const ext = base.includes('.') ? base.split('.').pop()! : '';
  return ext && lowlight.registered(ext) ? ext : undefined;
}

type Node = { type: string; value?: string; properties?: { className?: string[] }; children?: Node[] };

/** The text's lines, each as coloured segments (plain when the language is unknown). */
export function highlightLines(text: string, language: string | undefined): Segment[][] {
  const lines: Segment[][] = [[]];
  const push = (value: string, className: string) => {
    const parts = value.split('\n');
    parts.forEach((p, i) => {
      if (i > 0) lines.push([]);
      if (p) lines[lines.length - 1]!.push({ text: p, className });
    });
  };
  if (!language) {
    push(text, '');
    return lines;
  }
  const walk = (n: Node, classes: string) => {
    if (n.type === 'text') push(n.value ?? '', classes);
    const own = n.properties?.className?.join(' ');
    for (const c of n.children ?? []) walk(c, own ? `${classes} ${own}`.trim() : classes);
  };
  try {
    walk(lowlight.highlight(language, text) as unknown as Node, '');
  } catch {
    lines.length = 0;
    lines.push([]);
    push(text, '');
  }
  return lines;
}
