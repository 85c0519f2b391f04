import { defineConfig } from 'vitest/config';

/**
 * `npm run test:chaos`: the service as real child processes (built once), killed, starved of its database,
 * overloaded and run three at a time. Minutes long, so apart from `npm test`; CI runs both.
 */
export default defineConfig({
  resolve: { tsconfigPaths: true },
  test: {
    name: 'chaos',
    include: ['test/chaos/**/*.chaos-spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/.data/**'],
    globalSetup: ['./libs/testing/src/postgres.global-setup.ts', './test/chaos/support/build.global-setup.ts'],
    // One scenario at a time: each one loads the two cores on purpose.
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 300_000,
  },
});
