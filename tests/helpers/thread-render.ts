/**
 * A Discord thread as the Discord stand-in holds it, drawn as a page for a screenshot in the docs:
 * the messages the bot really posted (content, its Markdown subset, buttons), in a look close to
 * Discord's dark theme. Not Discord's own client: a picture of what the bot sent.
 */
import type { APIMessage } from 'discord.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The Markdown the bot uses: code blocks, bold, quotes, mentions, timestamps. */
function markdown(text: string, names: Record<string, string>): string {
  const parts = text.split(/```[a-z]*\n?/);
  return parts
    .map((p, i) => {
      if (i % 2 === 1) return `<pre>${esc(p.replace(/\n$/, ''))}</pre>`;
      return esc(p.replace(/✅/g, '✔').replace(/⛔/g, '✖'))
        .replace(/\*\*(.+?)\*\*/g, '<b>$1</b>')
        .replace(/&lt;@(\d+)&gt;/g, (_, id) => `<span class="mention">@${esc(names[id] ?? id)}</span>`)
        .replace(/&lt;#(\d+)&gt;/g, '<span class="mention">#thread</span>')
        .replace(/&lt;t:(\d+):(\w)&gt;/g, (_, s, style) => {
          const d = new Date(Number(s) * 1000);
          const ago = Math.round((d.getTime() - Date.now()) / 60_000);
          const rel =
            Math.abs(ago) >= 120 ? `${Math.round(Math.abs(ago) / 60)} hours` : `${Math.abs(ago)} minutes`;
          return `<span class="time">${style === 'R' ? (ago >= 0 ? `in ${rel}` : `${rel} ago`) : d.toUTCString().slice(5, 22)}</span>`;
        })
        .split('\n')
        .map((l) => (l.startsWith('&gt; ') ? `<div class="quote">${l.slice(5)}</div>` : l))
        .join('<br>');
    })
    .join('');
}

const STYLE: Record<number, string> = { 1: 'primary', 2: 'secondary', 3: 'success', 4: 'danger', 5: 'link' };

export function threadHtml(
  title: string,
  messages: APIMessage[],
  names: Record<string, string>,
  botName = 'Lia',
): string {
  const body = messages
    .map((m) => {
      const rows = ((m.components ?? []) as unknown as { components: { label?: string; style?: number }[] }[])
        .map(
          (r) =>
            `<div class="row">${r.components.map((b) => `<span class="btn ${STYLE[b.style ?? 2]}">${esc(b.label ?? '')}</span>`).join('')}</div>`,
        )
        .join('');
      const who = m.author.bot
        ? `${botName} <span class="tag">APP</span>`
        : esc(names[m.author.id] ?? m.author.username);
      return `<div class="msg"><div class="avatar">${esc((m.author.bot ? botName : (names[m.author.id] ?? '?'))[0]!)}</div><div><div class="who">${who}</div><div class="text">${markdown(m.content, names)}</div>${rows}</div></div>`;
    })
    .join('');
  return `<!doctype html><meta charset="utf-8"><style>
  body { margin: 0; background: #313338; color: #dbdee1; font: 15px/1.4 system-ui, sans-serif; }
  h1 { font-size: 15px; margin: 0; padding: 12px 16px; border-bottom: 1px solid #1f2023; color: #f2f3f5; }
  .msg { display: flex; gap: 12px; padding: 8px 16px; }
  .avatar { width: 36px; height: 36px; border-radius: 50%; background: #5865f2; color: white; display: grid; place-items: center; flex: none; font-weight: 600; }
  .who { font-weight: 600; color: #f2f3f5; }
  .tag { background: #5865f2; color: white; font-size: 10px; padding: 1px 4px; border-radius: 3px; vertical-align: middle; }
  pre { background: #2b2d31; border: 1px solid #1e1f22; border-radius: 4px; padding: 6px 8px; margin: 4px 0; white-space: pre-wrap; font: 13px/1.35 ui-monospace, monospace; }
  .quote { border-left: 4px solid #4e5058; padding-left: 8px; }
  .mention { background: #5865f24d; color: #c9cdfb; border-radius: 3px; padding: 0 2px; }
  .time { background: #ffffff0f; border-radius: 3px; padding: 0 2px; }
  .row { display: flex; gap: 8px; margin-top: 6px; }
  .btn { padding: 5px 14px; border-radius: 3px; color: white; font-size: 14px; font-weight: 500; }
  .primary { background: #5865f2; } .secondary { background: #4e5058; } .success { background: #248046; } .danger { background: #da373c; } .link { background: #4e5058; }
  </style><h1># ${esc(title)}</h1>${body}`;
}
