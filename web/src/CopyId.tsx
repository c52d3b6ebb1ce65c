/** The task id and a button that copies it. */
import { useState } from 'react';

/**
 * The Clipboard API exists only in secure contexts (https or localhost); a page served over plain
 * http on a LAN address falls back to copying a selection.
 */
async function copy(text: string): Promise<void> {
  if (navigator.clipboard) return navigator.clipboard.writeText(text);
  const area = document.createElement('textarea');
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

export function CopyId({ id }: { id: string }) {
  const [said, setSaid] = useState<string | null>(null);
  const onClick = () =>
    copy(id).then(
      () => setSaid('Copied'),
      () => setSaid('Copy failed'),
    );
  return (
    <>
      <code className="task-id" data-testid="task-id">
        {id}
      </code>
      <button
        type="button"
        onClick={onClick}
        onBlur={() => setSaid(null)}
        aria-label={`Copy the task id ${id}`}
      >
        {said ?? 'Copy id'}
      </button>
    </>
  );
}
