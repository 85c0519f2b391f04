import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** The Call Console, built into dist-console/ and served by the ledger under /console (same origin, no CDN). */
export default defineConfig({
  root: here('.'),
  base: '/console/',
  plugins: [react()],
  // The client imports only types from the server's DTO modules; this keeps a stray value import from pulling server code in.
  resolve: { tsconfigPaths: true },
  build: {
    outDir: here('../../dist-console'),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
});
