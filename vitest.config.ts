import { defineConfig } from 'vitest/config';
import { testProgramsSetup } from './test/support/vitest-programs.ts';

const programs = testProgramsSetup();

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/hardening/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Processes the tests start run bin/portcullis.js, i.e. dist/: compiled once, up front.
    globalSetup: ['test/support/build-dist.ts'],
    pool: 'forks',
    // Two cores: integration suites start real servers; keep parallelism modest.
    maxWorkers: 2,
    // One tag per program the integration tests run (redis-server, nginx, ...), skipped when missing.
    tags: programs.tags,
    reporters: ['default', programs.reporter],
    onConsoleLog: programs.onConsoleLog,
  },
});
