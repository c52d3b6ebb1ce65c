/**
 * xterm.js in a pane that it fills: keystrokes and size go out through the callbacks, the parent
 * writes output through the instance it gets from onReady.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal as XTerm } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef } from 'react';
import { currentTheme, onSchemeChange } from './terminalTheme';

export interface TerminalProps {
  onReady(t: XTerm | null): void;
  onData(data: string): void;
  onResize(cols: number, rows: number): void;
  /** F6 was pressed: the terminal takes every other key (Tab included), so this is the way out. */
  onLeave(): void;
}

export function Terminal(props: TerminalProps) {
  const el = useRef<HTMLElement>(null);
  // The latest callbacks, so the terminal is made once and not remade when the parent re-renders.
  const cb = useRef(props);
  cb.current = props;

  useEffect(() => {
    const term = new XTerm({
      cursorBlink: true,
      fontSize: 14,
      scrollback: 10_000,
      theme: currentTheme(),
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current!);
    term.attachCustomKeyEventHandler((e) => {
      if (e.key !== 'F6') return true;
      e.preventDefault(); // the browser's own F6 would move the focus to the address bar
      if (e.type === 'keydown') cb.current.onLeave();
      return false;
    });
    let size = '';
    const refit = () => {
      fit.fit();
      // Fitting to the same size again (banners coming and going) must not bother the PTY.
      if (`${term.cols}x${term.rows}` === size) return;
      size = `${term.cols}x${term.rows}`;
      cb.current.onResize(term.cols, term.rows);
    };
    // The pane changes size with the window and when banners above it appear or go.
    const observer = new ResizeObserver(() => refit());
    observer.observe(el.current!);
    refit();
    const typed = term.onData((d) => cb.current.onData(d));
    const unscheme = onSchemeChange((t) => {
      term.options.theme = t;
    });
    // Tests and tools read the screen from here.
    (window as unknown as { liaTerminal: XTerm }).liaTerminal = term;
    cb.current.onReady(term);
    term.focus();
    return () => {
      cb.current.onReady(null);
      typed.dispose();
      observer.disconnect();
      unscheme();
      term.dispose();
    };
  }, []);

  return (
    <section
      className="term-pane"
      ref={el}
      aria-label="Agent terminal"
      aria-describedby="term-help"
      data-testid="terminal"
    />
  );
}
