/** One task: its live terminal, state, idle countdown, tokens, and Resume / Stop. */
import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { totalInputText, usageText } from '../../common/usage-text';
import { Conversation } from './Conversation';
import { CopyId } from './CopyId';
import { IdleCountdown } from './IdleCountdown';
import { PullRequest } from './PullRequest';
import { StatusBadge } from './StatusBadge';
import { TaskActions } from './TaskActions';
import { Terminal } from './Terminal';

// The diff view and its grammars load only when someone opens it.
const Diff = lazy(() => import('./Diff'));

import { useTaskStream } from './useTaskStream';
import { useTaskView } from './useTaskView';

export function TaskPage({ taskId }: { taskId: string }) {
  const stream = useTaskStream(taskId);
  const { view, fatal } = useTaskView(taskId);
  const [message, setMessage] = useState<string | null>(null);
  const [typedWhileSuspended, setTypedWhileSuspended] = useState(false);
  const [showDiff, setShowDiff] = useState(false);
  const header = useRef<HTMLElement>(null);

  // The stream's state frames are the live truth; the REST read only fills in until the first.
  const state =
    stream.state ??
    (view && {
      status: view.status,
      idleDeadline: view.idleDeadline ?? null,
      error: view.error,
      queue: view.queue ?? null,
    });
  const status = state?.status ?? null;
  const ended = status === 'terminated' || status === 'failed';

  // A link that no longer opens this task won't start working by reconnecting.
  useEffect(() => {
    if (fatal) stream.close();
  }, [fatal, stream.close]);
  useEffect(() => {
    if (status === 'running') setTypedWhileSuspended(false);
  }, [status]);
  useEffect(() => setMessage(stream.error), [stream.error]);
  // The tab says which task and in what state, for someone with several open.
  useEffect(() => {
    document.title = `${status ?? '…'} · ${taskId} · Lia`;
  }, [status, taskId]);

  const onData = (d: string) => {
    // The API queues what is typed for a suspended task and resumes it: say so while it restores.
    if (status === 'suspended' || status === 'suspending') setTypedWhileSuspended(true);
    stream.input(d);
  };
  const leaveTerminal = () => header.current?.querySelector<HTMLElement>('button:not(:disabled), a')?.focus();

  return (
    // F6 from the header goes back into the terminal (the terminal handles F6 the other way).
    <main
      className="task"
      onKeyDown={(e) => {
        if (e.key === 'F6' && header.current?.contains(e.target as Node)) {
          e.preventDefault();
          stream.focus();
        }
      }}
    >
      <header ref={header}>
        <a href="/" className="back">
          Tasks
        </a>
        <CopyId id={taskId} />
        <StatusBadge status={status} live />
        {/* One line whatever it holds: a header that wraps would resize the terminal (and the PTY). */}
        <span className="info">
          {status === 'running' && state?.idleDeadline ? (
            <IdleCountdown deadline={state.idleDeadline} />
          ) : null}
          {view?.usage && view.usage.costUsd + view.usage.outputTokens > 0 && (
            // The input's parts (uncached, cache read, cache write) in the tooltip: the header has one line.
            <span className="muted" data-testid="usage" title={`Tokens: ${usageText(view.usage)}`}>
              {totalInputText(view.usage)} tokens in · {view.usage.outputTokens.toLocaleString('en-US')} out ·
              about ${view.usage.costUsd.toFixed(4)}
            </span>
          )}
          <span className="muted hint" id="term-help" title="F6 moves between the terminal and these buttons">
            <kbd>F6</kbd> leaves the terminal
          </span>
        </span>
        {view?.repo && (
          <button
            type="button"
            aria-pressed={showDiff}
            onClick={() => setShowDiff((v) => !v)}
            title="What the agent changed: the working tree against the base"
          >
            Changes
          </button>
        )}
        <PullRequest view={view} status={status} say={setMessage} />
        <TaskActions taskId={taskId} status={status} say={setMessage} />
      </header>
      {/* Lasting states go above the terminal; passing ones (below) float over it, because a
          banner that comes and goes would resize the terminal and the PTY each time. */}
      {fatal && (
        <div className="banner error" role="alert">
          {fatal}
        </div>
      )}
      {status === 'pending' && state?.queue && (
        <div className="banner info" data-testid="queued">
          Waiting for a host with room: number {state.queue.position} in the queue
          {state.queue.estimateSeconds
            ? ` (about ${Math.max(1, Math.round(state.queue.estimateSeconds / 60))} min)`
            : ''}
          . It starts as soon as a slot frees.
        </div>
      )}
      {status === 'suspended' && !typedWhileSuspended && (
        <div className="banner info" data-testid="suspended">
          This task is suspended. Resume it, or just type: it resumes and gets your keystrokes.
        </div>
      )}
      {typedWhileSuspended &&
        (status === 'suspended' || status === 'suspending' || status === 'resuming') && (
          <div className="banner info" data-testid="resuming">
            Resuming — what you type is kept and reaches the task once it runs again.
          </div>
        )}
      {state?.error && <div className="banner error">{state.error}</div>}
      {view?.budgetNotice && (
        <div className="banner error" data-testid="budget">
          {view.budgetNotice}
        </div>
      )}
      <div className="pane">
        <Terminal onReady={stream.attach} onData={onData} onResize={stream.resize} onLeave={leaveTerminal} />
        {/* Over the terminal, not beside it: a narrower terminal would resize the PTY. */}
        {showDiff && (
          <Suspense fallback={<aside className="diff">Loading…</aside>}>
            <Diff taskId={taskId} onClose={() => setShowDiff(false)} />
          </Suspense>
        )}
        <div className="toasts">
          {!fatal && !ended && stream.connection === 'connecting' && <div className="toast">Connecting…</div>}
          {!fatal && !ended && stream.connection === 'reconnecting' && (
            <div className="toast warn" role="alert" data-testid="reconnecting">
              Connection lost — reconnecting. Nothing is lost: the terminal carries on from where it stopped.
            </div>
          )}
          {message && (
            <div className="toast" role="status">
              {message}
              <button type="button" className="dismiss" onClick={() => setMessage(null)} aria-label="Dismiss">
                ×
              </button>
            </div>
          )}
        </div>
      </div>
      <Conversation
        taskId={taskId}
        changedAt={state && 'conversationAt' in state ? state.conversationAt : view?.conversationAt}
        ended={ended}
        say={setMessage}
      />
    </main>
  );
}
