// Vitest globalSetup: compiles src/ into dist/ once before any test file runs (`npm run build`'s
// command, `tsc -b`, which returns in well under a second when dist/ is up to date), because the
// tests that start Portcullis as a process run bin/portcullis.js, which runs dist/: what ships,
// not the sources through a loader. A compile error fails the run with tsc's own message.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export default function buildDist(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`dist/ could not be built (tsc -b tsconfig.build.json, as npm run build):\n${r.stdout}${r.stderr}`);
  }
}
