/**
 * The task's changes (issue 20): its working tree against the base it started from — files
 * changed with their counts, then each file's unified diff with line numbers and syntax colour.
 * Asked of the guest when opened and on Refresh (a suspended task shows the last one taken, and
 * says so). Everything shown came from the guest: rendered as text, never as markup.
 */
import parseDiff from 'parse-diff';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { diffStatText } from '../../common/diff';
import { api, type DiffView } from './api';
import { highlightLines, languageOf, type Segment } from './highlight';

type Change = { type: 'add' | 'del' | 'normal'; content: string; ln?: number; ln1?: number; ln2?: number };

interface Row {
  kind: 'add' | 'del' | 'normal' | 'hunk';
  oldNo?: number;
  newNo?: number;
  segments: Segment[];
}

/** A hunk's rows: each side coloured as a whole, then each change takes its line from its side. */
function hunkRows(header: string, changes: Change[], language: string | undefined): Row[] {
  const oldSide: string[] = [];
  const newSide: string[] = [];
  for (const c of changes) {
    const text = c.content.slice(1);
    if (c.type !== 'add') oldSide.push(text);
    if (c.type !== 'del') newSide.push(text);
  }
  const oldLines = highlightLines(oldSide.join('\n'), language);
  const newLines = highlightLines(newSide.join('\n'), language);
  const rows: Row[] = [{ kind: 'hunk', segments: [{ text: header, className: '' }] }];
  let o = 0;
  let n = 0;
  for (const c of changes) {
    if (c.type === 'add') rows.push({ kind: 'add', newNo: c.ln, segments: newLines[n++] ?? [] });
    else if (c.type === 'del') rows.push({ kind: 'del', oldNo: c.ln, segments: oldLines[o++] ?? [] });
    else {
      rows.push({ kind: 'normal', oldNo: c.ln1, newNo: c.ln2, segments: newLines[n++] ?? [] });
      o++;
    }
  }
  return rows;
}

const SIGN = { add: '+', del: '-', normal: ' ', hunk: '' } as const;

function FileDiff({ file }: { file: ReturnType<typeof parseDiff>[number] }) {
  const path = file.to && file.to !== '/dev/null' ? file.to : (file.from ?? '?');
  const rows = useMemo(() => {
    const language = languageOf(path);
    return file.chunks.flatMap((ch) => hunkRows(ch.content, ch.changes as Change[], language));
  }, [file, path]);
  const renamed =
    file.from && file.to && file.from !== file.to && file.from !== '/dev/null' && file.to !== '/dev/null';
  return (
    <section className="diff-file" data-testid="diff-file" data-path={path} id={`diff-${path}`}>
      <h3>
        <span className="path">{renamed ? `${file.from} → ${path}` : path}</span>
        {file.new && <span className="tag">new</span>}
        {file.deleted && <span className="tag">deleted</span>}
        <span className="counts">
          <span className="plus">+{file.additions}</span> <span className="minus">−{file.deletions}</span>
        </span>
      </h3>
      {rows.length ? (
        <table className="diff-lines">
          <tbody>
            {rows.map((r, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: rows never reorder
              <tr key={i} className={r.kind}>
                <td className="no">{r.oldNo ?? ''}</td>
                <td className="no">{r.newNo ?? ''}</td>
                <td className="code">
                  <span className="sign">{SIGN[r.kind]}</span>
                  {r.segments.map((s, j) =>
                    s.className ? (
                      // biome-ignore lint/suspicious/noArrayIndexKey: segments never reorder
                      <span key={j} className={s.className}>
                        {s.text}
                      </span>
                    ) : (
                      s.text
                    ),
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">No text changes (a binary file, or only its mode or name).</p>
      )}
    </section>
  );
}

export default function Diff({ taskId, onClose }: { taskId: string; onClose(): void }) {
  const [diff, setDiff] = useState<DiffView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      setDiff(await api<DiffView>('GET', `/tasks/${taskId}/diff`));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }, [taskId]);
  useEffect(() => {
    void load();
  }, [load]);
  const files = useMemo(() => (diff ? parseDiff(diff.patch) : []), [diff]);

  return (
    <aside className="diff" data-testid="diff" aria-label="Changes">
      <div className="diff-head">
        <strong>Changes</strong>
        {diff && <span data-testid="diff-stat">{diffStatText(diff.stat)}</span>}
        {diff && <span className="muted">against {diff.base.slice(0, 8)}</span>}
        <button type="button" onClick={load} disabled={busy}>
          {busy ? 'Asking the VM…' : 'Refresh'}
        </button>
        <button type="button" onClick={onClose} aria-label="Close the changes">
          ×
        </button>
      </div>
      {error && <div className="banner error">{error}</div>}
      {diff && !diff.fresh && (
        <div className="banner info" data-testid="diff-stale">
          {diff.note ?? 'Not fresh'} (taken {new Date(diff.takenAt).toLocaleString()}).
        </div>
      )}
      {diff && (
        <ul className="diff-files">
          {diff.files.map((f) => (
            <li key={f.path}>
              <button
                type="button"
                className="link"
                onClick={() => document.getElementById(`diff-${f.path}`)?.scrollIntoView()}
              >
                {f.from ? `${f.from} → ${f.path}` : f.path}
              </button>{' '}
              {f.added === null ? (
                <span className="muted">binary</span>
              ) : (
                <>
                  <span className="plus">+{f.added}</span> <span className="minus">−{f.deleted}</span>
                </>
              )}
            </li>
          ))}
          {diff.moreFiles > 0 && <li className="muted">… and {diff.moreFiles} more files</li>}
        </ul>
      )}
      {files.map((f, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the same path may appear twice in a hostile patch
        <FileDiff key={i} file={f} />
      ))}
      {diff?.truncated && (
        <p className="muted" data-testid="diff-truncated">
          The diff is cut here: it is larger than Lia shows. The files above are all there.
        </p>
      )}
    </aside>
  );
}
