/**
 * The task's conversation under its terminal: the questions its agent waits on (the same ones as
 * in the Discord thread, with the same three answers), the decisions so far (who, what, when),
 * and — in a headless conversation — a box for the next message to the agent, with the turns
 * still queued. Read again whenever the stream says the conversation moved (`conversationAt`).
 */
import { type FormEvent, useEffect, useState } from 'react';
import { api, type Choice, type ConversationView, type DecisionView, type FollowUpResponse } from './api';

const CHOICES: { choice: Choice; label: string; className?: string }[] = [
  { choice: 'once', label: 'Allow once' },
  { choice: 'always', label: 'Always allow this tool in this task' },
  { choice: 'deny', label: 'Deny', className: 'danger' },
];

/** "at 14:31:11" today, else with the date. */
function when(ms: number): string {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString()
    ? `at ${d.toLocaleTimeString()}`
    : `on ${d.toLocaleString()}`;
}

function decided(d: DecisionView): string {
  const who = d.by ? `user ${d.by}` : '';
  switch (d.how) {
    case 'once':
      return `allowed once by ${who}`;
    case 'always':
      return `allowed by ${who}, and always from now on`;
    case 'deny':
      return `denied by ${who}`;
    case 'rule':
      return 'allowed: always allowed in this task';
    case 'timeout':
      return 'denied: nobody answered in time';
    case 'limit':
      return 'denied: too many questions were waiting';
    case 'withdrawn':
      return 'withdrawn: the agent stopped waiting';
  }
}

export function Conversation(props: {
  taskId: string;
  /** Moves when the questions, decisions or turns change (from the stream's state). */
  changedAt: number | null | undefined;
  ended: boolean;
  say(message: string | null): void;
}) {
  const { taskId, changedAt, ended, say } = props;
  const [view, setView] = useState<ConversationView | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [text, setText] = useState('');

  // biome-ignore lint/correctness/useExhaustiveDependencies: changedAt is the reason to read again
  useEffect(() => {
    let stopped = false;
    api<ConversationView>('GET', `/tasks/${taskId}/conversation`)
      .then((v) => !stopped && setView(v))
      .catch(() => {});
    return () => {
      stopped = true;
    };
  }, [taskId, changedAt]);

  if (!view) return null;
  const queued = view.turns.filter((t) => t.status === 'queued' || t.status === 'delivered');
  const running = view.turns.find((t) => t.status === 'running');
  const show = view.questions.length || view.decisions.length || view.turnsEnabled;
  if (!show) return null;

  const answer = async (questionId: string, choice: Choice) => {
    setBusy(questionId);
    try {
      await api('POST', `/tasks/${taskId}/questions/${questionId}`, { choice });
      setView(await api<ConversationView>('GET', `/tasks/${taskId}/conversation`));
      say(null);
    } catch (e) {
      say((e as Error).message);
    } finally {
      setBusy(null);
    }
  };
  const send = async (e: FormEvent) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy('turn');
    try {
      const r = await api<FollowUpResponse>('POST', `/tasks/${taskId}/turns`, { text });
      setText('');
      say(r.kind === 'turn' && r.ahead > 0 ? `Queued as turn ${r.n}, after ${r.ahead} before it.` : null);
      setView(await api<ConversationView>('GET', `/tasks/${taskId}/conversation`));
    } catch (err) {
      say((err as Error).message);
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="conversation" aria-label="Conversation with the agent">
      {view.questions.map((q) => (
        <fieldset
          className="question"
          key={q.id}
          data-testid="question"
          aria-label={`The agent asks to use ${q.tool}`}
        >
          <div>
            <strong>The agent asks to use {q.tool}</strong>{' '}
            <span className="muted">(denied {when(q.deadline)} if nobody answers)</span>
          </div>
          <pre>{q.summary}</pre>
          {q.detail && <pre className="detail">{q.detail}</pre>}
          <div className="choices">
            {CHOICES.map((c) => (
              <button
                type="button"
                key={c.choice}
                className={c.className}
                disabled={busy !== null || ended}
                onClick={() => answer(q.id, c.choice)}
              >
                {c.label}
              </button>
            ))}
          </div>
        </fieldset>
      ))}
      {view.decisions.length > 0 && (
        <details className="decisions">
          <summary>
            {view.decisions.length} decision{view.decisions.length === 1 ? '' : 's'}
            {view.allowedTools.length ? ` · always allowed: ${view.allowedTools.join(', ')}` : ''}
            {view.permissionMode ? ` · mode ${view.permissionMode}` : ''}
          </summary>
          <ul>
            {view.decisions.map((d) => (
              <li key={d.questionId}>
                {new Date(d.at).toLocaleString()} — {d.tool} <code>{d.summary.slice(0, 120)}</code>:{' '}
                {decided(d)}
              </li>
            ))}
          </ul>
        </details>
      )}
      {view.turnsEnabled && !ended && (
        <form className="follow-up" onSubmit={send}>
          <input
            aria-label="Message to the agent"
            placeholder={
              running ? 'The agent is working; your message waits for it' : 'Your next message to the agent'
            }
            value={text}
            maxLength={100_000}
            onChange={(e) => setText(e.target.value)}
          />
          <button type="submit" disabled={busy !== null || !text.trim()}>
            Send
          </button>
          {queued.length > 0 && (
            <span className="muted" data-testid="queued-turns">
              {queued.length} queued
            </span>
          )}
        </form>
      )}
    </section>
  );
}
