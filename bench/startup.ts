// `npm run bench:startup`: how long `portcullis serve` takes from the process being spawned to
// "ready: serving Checks" (the log line written when gRPC health turns SERVING), for the compiled
// dist/ (what bin/portcullis.js, `npm start` and the image run) and for the sources through tsx (how
// they ran before there was a build, with tsx's transform cache and without it). A rollout, an
// autoscaler's new replica and a restarted worker all wait this long before they answer Checks. The
// runs take turns, so a shared machine's drift lands on every mode alike; the table gives the median.
// docs/performance.md, "Start-up time".
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from './lib/processes.ts';
import { median } from './lib/stats.ts';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '11' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(`npm run bench:startup -- [--runs N] [--json]
  Starts \`portcullis serve\` on the example config (listeners on free ports) N times each from dist/
  and through tsx (with and without its transform cache), in rotating order, and prints the median
  time from spawn to the "ready" log line.
  Builds dist/ first (tsc -b, a no-op when it is up to date).`);
  process.exit(0);
}
const RUNS = Number(opt.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs ${opt.runs}: a whole number of runs, 1 or more`);

interface Mode {
  name: string;
  argv: string[];
  env?: Record<string, string>;
}
/**
 * What starts the same `serve`: the build, and the sources through tsx with its transform cache
 * (kept in the temp folder) and without it, as in a container whose /tmp starts empty.
 */
const MODES: Mode[] = [
  { name: 'dist/ (bin/portcullis.js)', argv: ['bin/portcullis.js'] },
  { name: 'src/ through tsx, cache warm', argv: ['--import', 'tsx', 'src/cli/main.ts'] },
  { name: 'src/ through tsx, no cache', argv: ['--import', 'tsx', 'src/cli/main.ts'], env: { TSX_DISABLE_CACHE: '1' } },
];

const say = (line: string) => process.stderr.write(`${line}\n`);

/** dist/ from the current sources (`npm run build`'s command), so the two modes run the same code. */
function build(): void {
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('dist/ could not be built (tsc -b tsconfig.build.json): see the errors above');
}

/** The example config, its listeners on free loopback ports and its files in a temp folder. */
function writeConfig(dir: string): string {
  const examples = join(REPO_ROOT, 'examples');
  const doc = parse(readFileSync(join(examples, 'portcullis.yaml'), 'utf8'));
  doc.server.grpc.address = '127.0.0.1:0';
  doc.server.http.address = '127.0.0.1:0';
  copyFileSync(join(examples, 'demo-only-keys.yaml'), join(dir, 'keys.yaml'));
  doc.credentials.api_key.store = { type: 'file', path: join(dir, 'keys.yaml') };
  for (const issuer of doc.credentials.jwt) issuer.jwks_file = join(examples, issuer.jwks_file);
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/** Milliseconds from spawn to the "ready" line; the process is then stopped with SIGTERM. */
function startOnce(mode: Mode, config: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...mode.argv, 'serve', '--config', config], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...mode.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    let readyMs: number | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (readyMs !== undefined) return;
      out += chunk;
      if (out.includes('"msg":"ready: serving Checks"')) {
        readyMs = performance.now() - t0;
        child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (readyMs !== undefined) resolve(readyMs);
      else reject(new Error(`${mode.name}: exited (${code ?? signal}) before it was ready\n${stderr}${out}`));
    });
  });
}

/** Node itself, for scale: an empty script started the same way. */
function nodeAlone(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', () => resolve(performance.now() - t0));
  });
}

build();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-startup-'));
try {
  const config = writeConfig(dir);
  const times = new Map<string, number[]>(MODES.map((m) => [m.name, []]));
  const nodeTimes: number[] = [];
  const loadBefore = loadavg()[0];
  // One unmeasured start of each first: the first read of every file comes from disk, not the page cache.
  for (const m of MODES) await startOnce(m, config);
  for (let i = 0; i < RUNS; i++) {
    // The order rotates, so each mode runs first, second and third equally often.
    const order = MODES.map((_, k) => MODES[(i + k) % MODES.length]);
    for (const m of order) times.get(m.name)!.push(await startOnce(m, config));
    nodeTimes.push(await nodeAlone());
    say(`[${i + 1}/${RUNS}] ${order.map((m) => `${m.name} ${times.get(m.name)!.at(-1)!.toFixed(0)} ms`).join(', ')}`);
  }
  const rows = [
    ...MODES.map((m) => ({ mode: m.name, ms: times.get(m.name)! })),
    { mode: 'node -e 0 (Node alone)', ms: nodeTimes },
  ].map((r) => ({ ...r, median: median(r.ms), min: Math.min(...r.ms), max: Math.max(...r.ms) }));
  const machine = {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    loadBefore,
    loadAfter: loadavg()[0],
  };
  if (opt.json) console.log(JSON.stringify({ runs: RUNS, machine, rows }, null, 2));
  else {
    console.log(
      `\`portcullis serve\` to ready, example config, ${RUNS} runs each (${machine.node}, ${machine.cpus} × ${machine.cpu}, load ${loadBefore.toFixed(1)} → ${machine.loadAfter.toFixed(1)})\n`,
    );
    console.log('| started from | median | min | max |\n|---|--:|--:|--:|');
    for (const r of rows)
      console.log(`| ${r.mode} | **${r.median.toFixed(0)} ms** | ${r.min.toFixed(0)} ms | ${r.max.toFixed(0)} ms |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
