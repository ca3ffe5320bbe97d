// The Dockerfile, read instruction by instruction (no Docker engine here): Node 24 LTS slim in every
// stage, a build stage that compiles src/ into dist/, production dependencies and dist/ only in the
// runtime image (no src/, no TypeScript loader), a non-root user, a health check on the ops
// listener's default port, and every COPY source present and not excluded by .dockerignore.
// Also: nothing under src/ imports a dev dependency (the image would fail at start if it did).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import ts from 'typescript';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/policy/load.ts';
import { REPO } from './support/envoy-config.ts';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  body: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const l of lines) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(l)!;
    const OP = op.toUpperCase();
    if (OP === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      stages.push({ from: m[1].replace(/\$\{(\w+)\}/g, (_, n: string) => args[n] ?? ''), name: m[2], body: [] });
    } else if (stages.length === 0 && OP === 'ARG') {
      const [k, v] = rest.split('=');
      args[k] = v;
    } else stages[stages.length - 1].body.push({ op: OP, args: rest });
  }
  return { args, stages };
}

/** .dockerignore semantics for the patterns used here: path prefixes, `*` globs, `!` re-includes. */
function ignored(path: string, patterns: string[]): boolean {
  let out = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const p = neg ? raw.slice(1) : raw;
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(path)) out = !neg;
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync(`${REPO}Dockerfile`, 'utf8'));
const ignorePatterns = readFileSync(`${REPO}.dockerignore`, 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stage = (name: string) => dockerfile.stages.find((s) => s.name === name)!;

describe('Dockerfile', () => {
  it('is multi-stage on node:24-slim, with the runtime image last (the default target)', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const s of dockerfile.stages) expect(s.from).toBe('node:24-slim');
    expect(dockerfile.stages[dockerfile.stages.length - 1].name).toBe('runtime');
  });

  it('installs production dependencies only into the runtime image, and takes only dist/ from the build stage', () => {
    const deps = stage('deps');
    expect(deps.body.some((i) => i.op === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    const copiesFrom = stage('runtime')
      .body.filter((i) => i.op === 'COPY' && i.args.includes('--from='))
      .map((i) => i.args.split(/\s+/));
    expect(copiesFrom).toEqual([
      ['--from=deps', '/app/node_modules', './node_modules'],
      ['--from=build', '/app/dist', './dist'],
    ]);
    expect(stage('runtime').body.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('compiles in a build stage; the runtime image runs dist/ through bin/portcullis.js, with no src/ and no tsx', () => {
    const build = stage('build').body;
    expect(build.some((i) => i.op === 'RUN' && /^npm run build\b/.test(i.args))).toBe(true);
    expect(
      build
        .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1)),
    ).toEqual(expect.arrayContaining(['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src']));
    // npm run build is tsc over tsconfig.build.json, which compiles src/ into the dist/ copied above.
    const pkg = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as {
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(pkg.scripts.build).toMatch(/^tsc (-b|-p) tsconfig\.build\.json$/);
    const file = ts.readConfigFile(`${REPO}tsconfig.build.json`, (p) => ts.sys.readFile(p));
    const parsed = ts.parseJsonConfigFileContent(file.config, ts.sys, REPO);
    expect(parsed.errors).toEqual([]);
    expect(relative(REPO, parsed.options.rootDir!)).toBe('src');
    expect(relative(REPO, parsed.options.outDir!)).toBe('dist');
    expect(parsed.options.rewriteRelativeImportExtensions).toBe(true);
    // The runtime stage copies no sources, and its entrypoint runs the compiled CLI.
    const runtime = stage('runtime').body;
    expect(runtime.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/)[0])).not.toContain('src');
    expect(readFileSync(`${REPO}bin/portcullis.js`, 'utf8')).toContain(
      "new URL('../dist/cli/main.js', import.meta.url)",
    );
    // Neither the compiler nor a TypeScript loader is a production dependency.
    for (const dev of ['tsx', 'typescript']) {
      expect(pkg.dependencies[dev], dev).toBeUndefined();
      expect(pkg.devDependencies[dev], dev).toBeDefined();
    }
  });

  it('runs as a numeric non-root user, with a health check on the default ops port', () => {
    const body = stage('runtime').body;
    const user = body.filter((i) => i.op === 'USER').pop()!.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    const hc = body.find((i) => i.op === 'HEALTHCHECK')!.args;
    const opsPort = parseConfig('').server.http.address.split(':')[1];
    expect(hc).toContain(`http://127.0.0.1:${opsPort}/healthz`);
    expect(hc).toMatch(/--interval=\d+s --timeout=\d+s/);
    const entry = JSON.parse(body.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    expect(entry).toEqual(['node', 'bin/portcullis.js']);
    // The default CMD serves a config that is inside the image.
    const cmd = JSON.parse(body.find((i) => i.op === 'CMD')!.args) as string[];
    expect(cmd.slice(0, 2)).toEqual(['serve', '--config']);
    expect(cmd[2].startsWith('/app/examples/')).toBe(true);
    expect(existsSync(`${REPO}${cmd[2].slice('/app/'.length)}`)).toBe(true);
  });

  it('copies only sources that exist and that .dockerignore lets through', () => {
    for (const s of dockerfile.stages) {
      for (const i of s.body.filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
        const parts = i.args.split(/\s+/);
        for (const src of parts.slice(0, -1)) {
          expect(existsSync(`${REPO}${src}`), `${s.name}: COPY ${src}`).toBe(true);
          expect(ignored(src, ignorePatterns), `${s.name}: COPY ${src} is excluded by .dockerignore`).toBe(false);
        }
      }
    }
    // And keeps secrets of the build context, bulky folders and a local build out.
    for (const p of ['node_modules', '.git', 'test/deploy/compose.test.ts', 'bench', 'dist'])
      expect(ignored(p, ignorePatterns), p).toBe(true);
  });

  it('src/ imports only runtime dependencies (the image has no dev dependencies)', () => {
    const pkg = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { dependencies: Record<string, string> };
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk(`${REPO}src`);
    walk(`${REPO}bin`);
    const missing: string[] = [];
    const seen = new Set<string>();
    for (const f of [...files, `${REPO}bin/portcullis.js`]) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(
        /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm,
      )) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        if (/^import\s+type\s/.test(m[0].trim())) continue; // erased at runtime
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        seen.add(name);
        if (!pkg.dependencies[name]) missing.push(`${relative(REPO, f)}: ${spec}`);
      }
    }
    expect(missing).toEqual([]);
    expect(seen).toContain('@grpc/grpc-js'); // the scan does see package imports
  });
});
