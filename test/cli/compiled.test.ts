// Production runs the compiled dist/ (`npm run build`), not the TypeScript sources: bin/portcullis.js
// imports dist/cli/main.js, and the image ships dist/ without src/ or a TypeScript loader. These
// tests run the CLI from a copy laid out like the image (package.json, bin/, dist/, examples/,
// node_modules; no src/), so an import that still needs the sources, or a `.ts` specifier tsc did
// not rewrite (a computed dynamic import), fails here. test/support/build-dist.ts builds dist/
// before the run.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const DEMO_KEY = 'pcl_5czRyZSvNxFvQxAxilticGZmESG4tKuN0napKx';

function run(cwd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/portcullis.js', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** package.json, bin/, examples/ and node_modules (linked) in a new folder; dist/ only if asked. */
function imageLikeCopy(withDist: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-compiled-'));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'examples'));
  for (const f of ['portcullis.yaml', 'demo-only-keys.yaml', 'demo-only-jwks.json'])
    cpSync(join(ROOT, 'examples', f), join(dir, 'examples', f));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  if (withDist)
    cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  return dir;
}

describe('bin/portcullis.js runs the compiled dist/', () => {
  let dir: string;
  beforeAll(() => {
    dir = imageLikeCopy(true);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has no src/ to fall back on, and no emitted module imports a .ts file', () => {
    expect(existsSync(join(dir, 'src'))).toBe(false);
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (p.endsWith('.js')) {
          const text = readFileSync(p, 'utf8');
          for (const m of text.matchAll(
            /(?:^|\s)(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*([^)]*)\)/gm,
          )) {
            const spec = m[1] ?? m[2];
            // A literal `.ts` specifier, or a computed one tsc could not rewrite.
            if (/\.ts['"]?$/.test(spec) || (m[2] !== undefined && !/^['"][^'"]+['"]$/.test(m[2].trim())))
              offenders.push(`${p}: ${spec}`);
          }
        }
      }
    };
    walk(join(dir, 'dist'));
    expect(offenders).toEqual([]);
    // The scan does see imports: dist/cli/main.js imports the policy loader as .js.
    expect(readFileSync(join(dir, 'dist/cli/main.js'), 'utf8')).toMatch(/from ['"]\.\.\/policy\/load\.js['"]/);
  });

  it('--version prints the package version', async () => {
    const r = await run(dir, ['--version']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe(version);
  });

  it('config check and check answer as from the sources', async () => {
    const valid = await run(dir, ['config', 'check', 'examples/portcullis.yaml']);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('examples/portcullis.yaml: valid (4 routes)');
    const checked = await run(dir, [
      'check',
      '-c',
      'examples/portcullis.yaml',
      '--path',
      '/v1/orders/7',
      '-H',
      `x-api-key: ${DEMO_KEY}`,
    ]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({ allowed: true, status: 200, route: 'orders-read' });
  });

  it('serve reaches "ready" and stops on SIGTERM (its modules are imported on demand)', async () => {
    const config = join(dir, 'serve.yaml');
    writeFileSync(
      config,
      readFileSync(join(dir, 'examples/portcullis.yaml'), 'utf8')
        .replace(/0\.0\.0\.0:919[12]/g, '127.0.0.1:0')
        .replace(
          'path: keys.yaml, create_from: demo-only-keys.yaml',
          'path: examples/keys.yaml, create_from: examples/demo-only-keys.yaml',
        )
        .replace('jwks_file: demo-only-jwks.json', 'jwks_file: examples/demo-only-jwks.json'),
    );
    const child = spawn(process.execPath, ['bin/portcullis.js', 'serve', '--config', config], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('"msg":"ready: serving Checks"')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) =>
      child.exitCode !== null ? resolve(child.exitCode) : child.once('close', resolve),
    );
    expect(ready, `${err}${out}`).toBe(true);
    expect(code).toBe(0);
  });
});

describe('bin/portcullis.js without dist/', () => {
  it('says in one line to run npm run build, and exits 1', async () => {
    const dir = imageLikeCopy(false);
    try {
      const r = await run(dir, ['--version']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('portcullis: dist/ is missing (the compiled sources): run `npm run build` first\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
