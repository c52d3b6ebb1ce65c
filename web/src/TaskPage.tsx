/** One task: its live terminal, state, idle countdown, and Resume / Stop. */
import type { Terminal as XTerm } from '@xterm/xterm';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api, type TaskView } from './api';
import { TaskStream } from './stream';
import { Terminal } from './Terminal';

const stats = { bytes: 0 };
(window as unknown as { liaStats: typeof stats }).liaStats = stats;

type State = { status: string; idleDeadline: number | null; error: string | null };
type Usage = NonNullable<TaskView['usage']>;

function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

export function TaskPage({ taskId }: { taskId: string }) {
  const [state, setState] = useState<State>({ status: 'pending', idleDeadline: null, error: null });
  const [connected, setConnected] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [usage, setUsage] = useState<Usage | null>(null);
  const term = useRef<XTerm | null>(null);
  const pending = useRef<Uint8Array[]>([]);
  const now = useNow(1000);

  const stream = useMemo(
    () =>
      new TaskStream(taskId, {
        output: (b) => {
          // Bytes received, for the benchmark and for anyone curious in the console.
          stats.bytes += b.length;
          if (term.current) term.current.write(b);
          else pending.current.push(b);
        },
        state: (s) => setState(s),
        connection: setConnected,
        error: setMessage,
      }),
    [taskId],
  );
  useEffect(() => () => stream.close(), [stream]);
  useEffect(() => {
    api<TaskView>('GET', `/tasks/${taskId}`)
      .then((t) =>
        setState((s) => ({ ...s, status: t.status, idleDeadline: t.idleDeadline ?? null, error: t.error })),
      )
      .catch((e: Error) => setMessage(e.message));
  }, [taskId]);
  // Tokens change with model calls, not with the stream's state: read them now and then.
  useEffect(() => {
    const load = () =>
      api<TaskView>('GET', `/tasks/${taskId}`)
        .then((t) => t.usage && setUsage(t.usage))
        .catch(() => {});
    load();
    const t = setInterval(load, 10_000);
    return () => clearInterval(t);
  }, [taskId]);
  const onReady = useCallback((t: XTerm) => {
    term.current = t;
    for (const b of pending.current.splice(0)) t.write(b);
  }, []);

  const act = async (method: string, path: string, doing: string) => {
    setMessage(doing);
    try {
      await api(method, path);
      setMessage(null);
    } catch (e) {
      setMessage((e as Error).message);
    }
  };
  const ended = state.status === 'terminated' || state.status === 'failed';
  const left =
    state.status === 'running' && state.idleDeadline ? Math.max(0, state.idleDeadline - now) : null;

  return (
    <main className="task">
      <header>
        <a href="/" className="back">
          Tasks
        </a>
        <code className="task-id">{taskId}</code>
        <button
          type="button"
          onClick={() => navigator.clipboard.writeText(taskId).then(() => setCopied(true))}
          aria-label="Copy the task id"
        >
          {copied ? 'Copied' : 'Copy id'}
        </button>
        <span className={`badge badge-${state.status}`} data-testid="status" role="status">
          {state.status}
        </span>
        {left !== null && (
          <span className="idle" data-testid="idle">
            suspends when idle in {Math.ceil(left / 1000)} s
          </span>
        )}
        {usage && (
          <span className="idle" data-testid="usage">
            {usage.inputTokens.toLocaleString('en-US')} tokens in ·{' '}
            {usage.outputTokens.toLocaleString('en-US')} out · about ${usage.costUsd.toFixed(4)}
          </span>
        )}
        <span className="spacer" />
        <button
          type="button"
          disabled={state.status !== 'suspended'}
          onClick={() => act('POST', `/tasks/${taskId}/resume`, 'Resuming…')}
        >
          Resume
        </button>
        <button
          type="button"
          className="danger"
          disabled={ended}
          onClick={() => act('DELETE', `/tasks/${taskId}`, 'Stopping…')}
        >
          Stop
        </button>
      </header>
      {!connected && !ended && (
        <div className="banner" role="alert" data-testid="reconnecting">
          Connection lost — reconnecting; nothing you missed will be lost.
        </div>
      )}
      {state.status === 'suspended' && (
        <div className="banner info" data-testid="suspended">
          This task is suspended. Resume it, or just type: it resumes and gets your keystrokes.
        </div>
      )}
      {state.error && <div className="banner error">{state.error}</div>}
      {message && <div className="banner info">{message}</div>}
      <Terminal stream={stream} onReady={onReady} />
    </main>
  );
}
