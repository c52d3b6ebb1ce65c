/**
 * A task's stream bound to the page's terminal: output goes to the terminal (kept until it exists),
 * state and connection come back as React state. The stream lives in an effect, so React's
 * development double-mount opens and closes a socket instead of leaking one.
 */
import type { Terminal as XTerm } from '@xterm/xterm';
import { useCallback, useEffect, useRef, useState } from 'react';
import { type Connection, type StreamState, TaskStream } from './stream';

/** Bytes received, for the benchmark and for anyone curious in the console. */
const stats = { bytes: 0 };
(window as unknown as { liaStats: typeof stats }).liaStats = stats;

export function useTaskStream(taskId: string) {
  const term = useRef<XTerm | null>(null);
  const pending = useRef<(Uint8Array | string)[]>([]);
  const stream = useRef<TaskStream | null>(null);
  const [state, setState] = useState<StreamState | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const write = (b: Uint8Array | string) => {
      if (term.current) term.current.write(b);
      else pending.current.push(b);
    };
    const s = new TaskStream(taskId, {
      output: (b) => {
        stats.bytes += b.length;
        write(b);
      },
      state: setState,
      connection: setConnection,
      truncated: (m) => write(`\x1b[2m[${m}]\x1b[0m\r\n`),
      error: setError,
    });
    stream.current = s;
    // The terminal (a child) is made before this effect runs: its size is known already.
    if (term.current) s.resize(term.current.cols, term.current.rows);
    return () => {
      s.close();
      stream.current = null;
    };
  }, [taskId]);

  const attach = useCallback((t: XTerm | null) => {
    term.current = t;
    if (t) for (const b of pending.current.splice(0)) t.write(b);
  }, []);
  const input = useCallback((d: string) => stream.current?.input(d), []);
  const resize = useCallback((cols: number, rows: number) => stream.current?.resize(cols, rows), []);
  const close = useCallback(() => stream.current?.close(), []);
  const focus = useCallback(() => term.current?.focus(), []);

  return { state, connection, error, attach, input, resize, close, focus };
}
