import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development the Vite server proxies the API (and its WebSockets) to a running `./lia start`.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: { '/api': { target: process.env.LIA_API_URL ?? 'http://127.0.0.1:3000', ws: true } },
  },
});
