// The import rules of src/ (.dependency-cruiser.cjs, CONTRIBUTING.md "Layers"): no import circle,
// no import from a lower layer to a higher one. Runs dependency-cruiser on src/, and on a small
// tree with one bad import of each kind, to show the rules catch them.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: Array<{ name: string }>;
}

function cruise(cwd: string): Violation[] {
  const r = spawnSync(
    process.execPath,
    [DEPCRUISE, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', 'src'],
    { cwd, encoding: 'utf8', timeout: 60_000 },
  );
  if (!r.stdout) throw new Error(`dependency-cruiser did not run: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

const show = (vs: Violation[]) =>
  vs.map(
    (v) => `${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(' -> ')})` : ''}`,
  );

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('layers of src/', () => {
  it('src/ has no import circle and no import against the layers', () => {
    expect(show(cruise(ROOT))).toEqual([]);
  });

  it('every folder of src/ has its place in the layers (a new one is added to LAYERS in .dependency-cruiser.cjs)', () => {
    const declared = /const LAYERS = \[([^\]]*)\]/.exec(
      readFileSync(join(ROOT, '.dependency-cruiser.cjs'), 'utf8'),
    )![1];
    const known = [...declared.matchAll(/'([^']+)'/g)].flatMap((m) => m[1].split('|'));
    expect(known).toContain('core');
    const folders = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(folders.filter((f) => !known.includes(f))).toEqual([]);
  });

  it('the rules catch an upward import, a type-only one included, and a circle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-layers-'));
    dirs.push(dir);
    cpSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          allowImportingTsExtensions: true,
          noEmit: true,
        },
      }),
    );
    const files: Record<string, string> = {
      'src/core/decide.ts': "import type { App } from '../runtime/app.ts';\nexport type D = App;\n",
      'src/runtime/app.ts': 'export interface App { x: number }\n',
      'src/credentials/jwt.ts': "import { limiter } from '../stores/limiter.ts';\nexport const jwt = limiter;\n",
      'src/stores/limiter.ts':
        "import { jwt } from '../credentials/jwt.ts';\nexport const limiter = 1;\nexport const again = jwt;\n",
      'src/plumbing/cache.ts':
        "import { App } from '../runtime/app.ts';\nexport const c: App | undefined = undefined;\n",
    };
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), text);
    }
    const found = show(cruise(dir));
    expect(found).toContain('layer-core: src/core/decide.ts -> src/runtime/app.ts');
    expect(found).toContain('layer-plumbing: src/plumbing/cache.ts -> src/runtime/app.ts');
    expect(found).toContain('layer-stores: src/stores/limiter.ts -> src/credentials/jwt.ts');
    expect(found.some((f) => f.startsWith('no-circular:'))).toBe(true);
  });
});
