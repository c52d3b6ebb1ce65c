/**
 * Terminal colours for the system's dark or light scheme. The light palette darkens the ANSI
 * colours (and maps "white" to grey) so that text a program prints in them stays readable on a
 * light background.
 */
import type { ITheme } from '@xterm/xterm';

export const darkTheme: ITheme = {
  background: '#101014',
  foreground: '#e6e6ec',
  cursor: '#e6e6ec',
  cursorAccent: '#101014',
  selectionBackground: '#8aa4ff55',
};

export const lightTheme: ITheme = {
  background: '#fdfdfd',
  foreground: '#1b1b1f',
  cursor: '#1b1b1f',
  cursorAccent: '#fdfdfd',
  selectionBackground: '#3558d640',
  black: '#1b1b1f',
  red: '#b71c1c',
  green: '#1b6e20',
  yellow: '#7a5d00',
  blue: '#1550a8',
  magenta: '#8e24aa',
  cyan: '#00717c',
  white: '#5b5b66',
  brightBlack: '#6b6b76',
  brightRed: '#c62828',
  brightGreen: '#2e7d32',
  brightYellow: '#8d6e00',
  brightBlue: '#1e63c7',
  brightMagenta: '#9c27b0',
  brightCyan: '#00838f',
  brightWhite: '#3b3b44',
};

const query = () => window.matchMedia('(prefers-color-scheme: light)');

export const currentTheme = (): ITheme => (query().matches ? lightTheme : darkTheme);

/** Calls `apply` whenever the system scheme changes; returns the unsubscribe. */
export function onSchemeChange(apply: (t: ITheme) => void): () => void {
  const q = query();
  const listener = () => apply(currentTheme());
  q.addEventListener('change', listener);
  return () => q.removeEventListener('change', listener);
}
