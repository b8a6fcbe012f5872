import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Leak tests force collections with global.gc(); v8.queryObjects needs no flag.
    execArgv: ['--expose-gc', '--no-warnings'],
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    reporters: ['default', './test/helpers/summary_reporter.ts'],
  },
});
