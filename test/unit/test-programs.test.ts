// `npm test` on a machine without redis-server, nginx, openssl, h2load or git: the files that need
// the missing program are skipped with a notice that names it and how to install it (at the start
// and after the summary), never a cascade of "redis-server on port N did not start:" errors. With
// PORTCULLIS_TEST_PROGRAMS=required (CI) a missing program is one line and exit 1, before any test.
// And every test file that uses one of those programs carries its module tag (test/support/programs.ts).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TEST_PROGRAMS } from '../support/programs.ts';

const REPO = process.cwd();
const VITEST = join(REPO, 'node_modules/vitest/vitest.mjs');
// Built from parts: this file must not carry the tags it talks about.
const TAG = new RegExp(`(//|\\*)\\s*@${'module-tag'}\\s+([\\w\\-/]+)\\b`, 'g');

/** Runs vitest on some files with a PATH that has none of the test programs. */
function vitestWithout(
  files: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; out: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: '/nonexistent',
    REDIS_SERVER: '/nonexistent/redis-server',
    ...extraEnv,
  };
  delete env.PORTCULLIS_TEST_PROGRAMS;
  Object.assign(env, extraEnv);
  return new Promise((done) => {
    const child = spawn(process.execPath, [VITEST, 'run', ...files], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => ((stderr += d), (out += d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, out, stderr });
    });
  });
}

describe('a machine without the test programs', () => {
  it('npm test skips the files that need them, says which program and how to install it, and passes', async () => {
    const r = await vitestWithout(['test/redis/ratelimiter.test.ts', 'test/unit/paths.test.ts']);
    expect(r.out).not.toMatch(/did not start|Unhandled|ENOENT/);
    expect(r.code).toBe(0);
    const notice =
      /redis-server is not installed, so the test files tagged "redis-server" .* are SKIPPED\. Install it \(Debian\/Ubuntu: apt-get install -y redis-server\)/g;
    expect(r.out.match(notice)).toHaveLength(2); // at the start, and after the summary
    expect(r.out).toContain('1 test file(s) SKIPPED for missing programs: test/redis/ratelimiter.test.ts');
    expect(r.out).toMatch(/Test Files .*1 passed.*1 skipped/);
  });

  it('with PORTCULLIS_TEST_PROGRAMS=required (CI): one line naming what is missing and the install command, exit 1', async () => {
    const r = await vitestWithout(['test/redis/ratelimiter.test.ts'], { PORTCULLIS_TEST_PROGRAMS: 'required' });
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^npm test: missing redis-server, .*Install \(Debian\/Ubuntu\): apt-get install -y redis-server /,
    );
  });
});

describe("a dependency's warning", () => {
  it('oidc-provider\'s "Unsupported runtime" warning is shown at most once per run, not once per test file', async () => {
    // Three files that each import oidc-provider (through test/support/idp.ts).
    const r = await vitestWithout(
      [
        'test/introspection/introspector.test.ts',
        'test/introspection/tls.integration.test.ts',
        'test/jwt/oidc-provider.test.ts',
      ],
      { PATH: process.env.PATH ?? '' },
    );
    expect(r.code).toBe(0);
    const warned = r.out.match(/oidc-provider WARNING: Unsupported runtime/g)?.length ?? 0;
    // Node 20 gets it (once); an LTS that oidc-provider supports gets none.
    expect(warned).toBe(Number(!process.release.lts || process.release.lts < 'Jod'));
  });
});

/** Every *.test.ts under test/. */
function testFiles(dir = join(REPO, 'test')): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

/** The programs a file's code runs, itself or through a test file it imports. */
function programsUsed(file: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(file)) return out;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  if (/support\/redis\.ts|startRedis\(/.test(text)) out.add('redis-server');
  if (/startNginx\(|nginxConfigTest\(/.test(text)) out.add('nginx');
  if (/\(\s*'openssl'/.test(text) || /execFileSync\(\s*'openssl'/.test(text)) out.add('openssl');
  if (/'h2load'|bench\/(run|ab)\.ts/.test(text)) out.add('h2load');
  if (/(execFileSync|spawnSync|spawn|execFile)\(\s*'git'/.test(text)) out.add('git');
  for (const m of text.matchAll(/^import\s+(?:[^'"]*from\s+)?'(\.[^']+\.test\.ts)'/gm))
    for (const p of programsUsed(resolve(dirname(file), m[1]), seen)) out.add(p);
  return out;
}

describe('module tags', () => {
  it('every test file that runs one of the programs is tagged with it (and no tag is unknown)', () => {
    const problems: string[] = [];
    // (This file names the patterns it looks for, so it is not scanned.)
    for (const f of testFiles().filter((x) => x !== fileURLToPath(import.meta.url))) {
      const tags = new Set([...readFileSync(f, 'utf8').matchAll(TAG)].map((m) => m[2]));
      for (const p of programsUsed(f))
        if (!tags.has(p)) problems.push(`${relative(REPO, f)} runs ${p} but has no "@${'module-tag'} ${p}"`);
      for (const t of tags) if (!(t in TEST_PROGRAMS)) problems.push(`${relative(REPO, f)}: unknown tag ${t}`);
    }
    expect(problems).toEqual([]);
  });
});
