// `npm run test:hardening`: the long fuzz, fault and soak suites (minutes, not seconds).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/hardening/**/*.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
