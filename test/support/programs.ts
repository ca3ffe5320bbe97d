// The programs some test files run besides Node, how to install each, and whether this machine has it.
//
// A test file that needs one says so in a module tag, `// @module-tag <program>` near its top
// (vitest's file-level tags). vitest.config.ts defines one tag per program here and marks it `skip`
// when the program is missing, so `npm test` on a machine without it skips exactly those files and
// says so, once at the start and once at the end, with the command that installs it, instead of
// failing them with a cascade of errors. PORTCULLIS_TEST_PROGRAMS=required (set by .ci/run) turns a
// missing program into one line and exit 1 before any test runs: CI never skips.
// test/unit/test-programs.test.ts checks that every file using a program carries its tag.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface TestProgram {
  /** Debian / Ubuntu package that provides it. */
  debian: string;
  /** What the tagged files test with it. */
  usedFor: string;
  /** An environment variable that names the executable instead of PATH. */
  override?: string;
}

export const TEST_PROGRAMS: Readonly<Record<string, TestProgram>> = {
  'redis-server': {
    debian: 'redis-server',
    usedFor: 'the Redis key store, rate limits, shared caches and Redis outages',
    override: 'REDIS_SERVER',
  },
  nginx: { debian: 'nginx', usedFor: 'forward-auth end to end through nginx' },
  openssl: { debian: 'openssl', usedFor: 'certificates for the TLS tests' },
  h2load: { debian: 'nghttp2-client', usedFor: 'the benchmark smoke test' },
  git: { debian: 'git', usedFor: 'checks of the files a git checkout tracks' },
};

// nginx lives in /usr/sbin, which is not on a non-root user's PATH.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable found on PATH (then the sbin folders), or undefined. */
export function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const override = TEST_PROGRAMS[name]?.override;
  const candidates =
    override && env[override]
      ? [env[override]]
      : [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS].map((dir) => join(dir, name));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function missingPrograms(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(TEST_PROGRAMS).filter((name) => !findProgram(name, env));
}

/** `apt-get install -y <packages>` for the given programs. */
export function installCommand(programs: readonly string[]): string {
  return `apt-get install -y ${[...new Set(programs.map((p) => TEST_PROGRAMS[p]?.debian ?? p))].join(' ')}`;
}

/** One line per missing program, for the start and the end of a run. */
export function skipNotice(missing: readonly string[]): string[] {
  return missing.map(
    (p) =>
      `npm test: ${p} is not installed, so the test files tagged "${p}" (${TEST_PROGRAMS[p].usedFor}) are SKIPPED. ` +
      `Install it (Debian/Ubuntu: ${installCommand([p])}) to run them; CI (.ci/run) runs everything.`,
  );
}

/** The one line PORTCULLIS_TEST_PROGRAMS=required prints before exiting 1. */
export function requiredNotice(missing: readonly string[]): string {
  return (
    `npm test: missing ${missing.join(', ')} (PORTCULLIS_TEST_PROGRAMS=required). ` +
    `Install (Debian/Ubuntu): ${installCommand(missing)}; or unset PORTCULLIS_TEST_PROGRAMS to skip the files that need them.`
  );
}

/** For the support code that starts a program: a clear error if a test file forgot its tag. */
export function requireProgram(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const found = findProgram(name, env);
  if (found) return found;
  throw new Error(
    `${name} is not installed (Debian/Ubuntu: ${installCommand([name])}). Tag the test file that needs it with "@module-tag ${name}" so that it is skipped, not failed, without it`,
  );
}
