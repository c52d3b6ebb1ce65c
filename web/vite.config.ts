import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development the Vite server proxies the API (and its WebSockets) to a running `./lia start`.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  // xterm.js and React are most of the one script (about 570 kB, 150 kB gzipped): splitting it would
  // not make the page usable any sooner, so the default 500 kB warning is only noise.
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 800 },
  server: {
    proxy: { '/api': { target: process.env.LIA_API_URL ?? 'http://127.0.0.1:3000', ws: true } },
  },
});
