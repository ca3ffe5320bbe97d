// `npm run test:hardening`: the long fuzz, fault and soak suites (minutes, not seconds).
import { defineConfig } from 'vitest/config';
import { testProgramsSetup } from './test/support/vitest-programs.ts';

const programs = testProgramsSetup();

export default defineConfig({
  test: {
    include: ['test/hardening/**/*.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 120_000,
    // Processes the tests start run bin/portcullis.js, i.e. dist/: compiled once, up front.
    globalSetup: ['test/support/build-dist.ts'],
    pool: 'forks',
    maxWorkers: 1,
    tags: programs.tags,
    reporters: ['default', programs.reporter],
    onConsoleLog: programs.onConsoleLog,
  },
});
