/**
 * Resume and Stop. Stopping deletes the VM and its disk, so it asks once more, inline (a native
 * confirm() dialog would block the page and the terminal's output behind it).
 */
import { useRef, useState } from 'react';
import { api } from './api';

export interface TaskActionsProps {
  taskId: string;
  status: string | null;
  /** Tells the page what is going on ("Resuming…"), or null when done; errors as text. */
  say(message: string | null): void;
}

export function TaskActions({ taskId, status, say }: TaskActionsProps) {
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const stopButton = useRef<HTMLButtonElement>(null);
  const ended = status === 'terminated' || status === 'failed';
  const cancel = () => {
    setConfirming(false);
    // The question's buttons are gone: give the focus back to Stop rather than to nothing.
    requestAnimationFrame(() => stopButton.current?.focus());
  };

  const act = async (method: string, path: string, doing: string) => {
    setBusy(true);
    setConfirming(false);
    say(doing);
    try {
      await api(method, path);
      say(null);
    } catch (e) {
      say((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (confirming && !ended)
    return (
      // biome-ignore lint/a11y/noStaticElementInteractions: Escape cancels, as in a dialog; the buttons do the rest
      <span className="confirm" onKeyDown={(e) => e.key === 'Escape' && cancel()}>
        <span>Stop and delete its VM?</span>
        <button
          type="button"
          className="danger"
          // biome-ignore lint/a11y/noAutofocus: the question just asked needs the focus
          autoFocus
          onClick={() => act('DELETE', `/tasks/${taskId}`, 'Stopping…')}
        >
          Stop the task
        </button>
        <button type="button" onClick={cancel}>
          Cancel
        </button>
      </span>
    );
  return (
    <>
      <button
        type="button"
        disabled={busy || status !== 'suspended'}
        onClick={() => act('POST', `/tasks/${taskId}/resume`, 'Resuming…')}
      >
        Resume
      </button>
      <button
        type="button"
        className="danger"
        ref={stopButton}
        disabled={busy || ended}
        onClick={() => setConfirming(true)}
      >
        Stop
      </button>
    </>
  );
}
