import { defineConfig } from 'vitest/config';

/**
 * `npm run test:browser`: the console in Debian's Chromium (/usr/bin/chromium, driven by playwright-core) against
 * the whole service on a real port and the real PostgreSQL. The console is built once per run.
 */
export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    name: 'browser',
    include: ['test/browser/**/*.browser-spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/.data/**'],
    globalSetup: ['./libs/testing/src/postgres.global-setup.ts', './test/browser/support/console-build.global-setup.ts'],
    // One browser at a time on a small machine.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
