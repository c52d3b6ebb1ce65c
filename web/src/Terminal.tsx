/** xterm.js bound to a task's stream: output in, keystrokes and size out. */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal as XTerm } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef } from 'react';
import type { TaskStream } from './stream';

export function Terminal({ stream, onReady }: { stream: TaskStream; onReady(t: XTerm): void }) {
  const el = useRef<HTMLElement>(null);
  useEffect(() => {
    const term = new XTerm({ cursorBlink: true, convertEol: false, fontSize: 14, scrollback: 10_000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current!);
    const refit = () => {
      fit.fit();
      stream.resize(term.cols, term.rows);
    };
    refit();
    const typed = term.onData((d) => stream.input(d));
    window.addEventListener('resize', refit);
    // Tests and tools read the screen from here.
    (window as unknown as { liaTerminal: XTerm }).liaTerminal = term;
    onReady(term);
    term.focus();
    return () => {
      typed.dispose();
      window.removeEventListener('resize', refit);
      term.dispose();
    };
  }, [stream, onReady]);
  return <section className="term-pane" ref={el} aria-label="Agent terminal" />;
}
