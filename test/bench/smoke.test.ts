// `npm run bench -- --quick` end to end: the bench starts Portcullis and the floor,
// checks the payload's decision, drives both with h2load and reports sane numbers as JSON.
// Skipped when h2load (Debian's nghttp2-client) is not installed (the module tag); .ci/run installs it.
// @module-tag h2load
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tasksetAvailable } from '../../bench/lib/cpu-pinning.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function runBench(args: string[], script = 'bench/run.ts'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('bench --quick', () => {
  it('measures the API-key scenario against the floor and reports it as JSON', async () => {
    const { code, stdout, stderr } = await runBench([
      '--quick',
      '--scenarios',
      'api-key',
      '--duration',
      '1',
      '--warmup',
      '1',
      '--fixed-rate',
      '0',
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('api-key: ok'); // the preflight decision check ran
    const result = JSON.parse(stdout) as {
      settings: { portcullis: string };
      rows: Array<Record<string, number | string>>;
    };
    // Portcullis as production runs it: the compiled dist/ through bin/portcullis.js.
    expect(result.settings.portcullis).toBe('bin/portcullis.js');
    const floor = result.rows.find((r) => r.scenario === 'floor')!;
    const apiKey = result.rows.find((r) => r.scenario === 'api-key')!;
    expect(floor.checksPerSecond).toBeGreaterThan(100);
    expect(apiKey.checksPerSecond).toBeGreaterThan(100);
    expect(apiKey.ratioToFloor).toBeCloseTo(
      (apiKey.runs as unknown as number[])[0] / (apiKey.floorRuns as unknown as number[])[0],
      2,
    );
    expect(apiKey.p99Ms).toBeGreaterThanOrEqual(apiKey.p50Ms as number);
    // Every decision Portcullis made under load was the expected allow (its own metrics say so).
    expect(apiKey.expectedShare).toBe(1);
    expect(apiKey.peakRssMB).toBeGreaterThan(20);
  }, 60_000);

  it('never-seen tokens, --pairs alternating: both servers get the same pool, and the order alternates between rounds', async () => {
    const { code, stdout, stderr } = await runBench([
      '--quick',
      '--pairs',
      'alternating',
      '--rounds',
      '2',
      '--scenarios',
      'jwt-es256-new',
      '--duration',
      '1',
      '--warmup',
      '1',
      '--fixed-rate',
      '0',
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('[1/2] jwt-es256-new: floor, then Portcullis (generator)');
    expect(stderr).toContain('[2/2] jwt-es256-new: Portcullis, then floor (generator)');
    expect(stderr).not.toContain('A/A');
    const result = JSON.parse(stdout) as {
      settings: { pairs: string };
      calibration: unknown;
      rows: Array<Record<string, unknown>>;
    };
    expect(result.settings.pairs).toBe('alternating');
    expect(result.calibration).toBeNull();
    const floor = result.rows.find((r) => r.scenario === 'floor-generator')!;
    const row = result.rows.find((r) => r.scenario === 'jwt-es256-new')!;
    const runs = row.runs as number[];
    const floorRuns = row.floorRuns as number[];
    expect(runs).toHaveLength(2);
    expect(floor.runs as number[]).toEqual(floorRuns);
    // × floor is the median of the per-pair ratios (two pairs: their mean).
    expect(row.ratioToFloor as number).toBeCloseTo((runs[0] / floorRuns[0] + runs[1] / floorRuns[1]) / 2, 2);
    expect(row.expectedShare).toBe(1);
  }, 120_000);

  it('by default runs each pair at once, calibrates with an A/A pair, and holds the fixed rate over one connection', async () => {
    const { code, stdout, stderr } = await runBench([
      '--quick',
      '--scenarios',
      'api-key,jwt-es256-new',
      '--duration',
      '1',
      '--warmup',
      '1',
      '--fixed-rate',
      '400',
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('warm-up: each scenario on both servers, not measured');
    expect(stderr).toContain('[1/1] A/A: the floor and a second floor at once (h2load), Portcullis driven alongside');
    expect(stderr).toContain('[1/1] api-key: floor and Portcullis at once (h2load)');
    expect(stderr).toContain('[1/1] jwt-es256-new: floor and Portcullis at once (generator)');
    const result = JSON.parse(stdout) as {
      settings: { pairs: string };
      calibration: { ratios: number[]; median: number };
      rows: Array<Record<string, unknown>>;
      fixedRate: { connections: number; floor: { checksPerSecond: number }; apiKey: { checksPerSecond: number } };
    };
    expect(result.settings.pairs).toBe('concurrent');
    // Two floors measured at once: one ratio per round, and a real one (both servers answered).
    expect(result.calibration.ratios).toHaveLength(1);
    expect(result.calibration.median).toBeGreaterThan(0.3);
    expect(result.calibration.median).toBeLessThan(3);
    const apiKey = result.rows.find((r) => r.scenario === 'api-key')!;
    expect(apiKey.expectedShare).toBe(1);
    // The generator row at once: the same pool to both servers, every decision the expected allow.
    const es = result.rows.find((r) => r.scenario === 'jwt-es256-new')!;
    expect(es.expectedShare).toBe(1);
    expect(result.rows.find((r) => r.scenario === 'floor-generator')!.runs).toEqual(es.floorRuns);
    expect(result.fixedRate.connections).toBe(1);
    expect(result.fixedRate.floor.checksPerSecond).toBeGreaterThan(300);
    expect(result.fixedRate.apiKey.checksPerSecond).toBeGreaterThan(300);
  }, 120_000);
});

describe.skipIf(!tasksetAvailable() || cpus().length < 2)('bench:ab', () => {
  it('pairs this build against itself, after priming both with never-seen tokens', async () => {
    const { code, stdout, stderr } = await runBench(
      [
        '--rounds',
        '2',
        '--duration',
        '1',
        '--prime',
        '40',
        '--prime-with',
        'deny-no-credential,jwt-es256-new,opaque-cached',
        '--pool',
        '300',
        '--prime-seconds',
        '1',
      ],
      'bench/ab.ts',
    );
    expect(code, stderr).toBe(0);
    // Both checkouts (here the same one) have the build, so both run compiled.
    expect(stdout).toContain('A and B run compiled (dist/, built now)');
    expect(stdout).toContain('primed both with 40 never-seen RS256 tokens');
    expect(stdout).toContain('primed both with 1 s of deny-no-credential\n');
    // A never-seen-token row primes through the generator, from a pool of --pool tokens.
    expect(stdout).toContain('primed both with 1 s of jwt-es256-new\n');
    // The opaque-token row brings up the bench's identity provider to introspect at.
    expect(stdout).toContain('primed both with 1 s of opaque-cached\n');
    expect(stdout.match(/^\[\d\] A \d+\/s {2}B \d+\/s {2}B\/A \d\.\d{3}$/gm)).toHaveLength(2);
    const ratio = Number(/^api-key: B\/A (\d+\.\d+) \(pairs/m.exec(stdout)?.[1]);
    // Two copies of one build: the same order of magnitude whatever the machine does.
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  }, 120_000);

  it('names an unknown --prime-with scenario before starting anything', async () => {
    const { code, stderr } = await runBench(['--prime-with', 'deny-no-such-row'], 'bench/ab.ts');
    expect(code).not.toBe(0);
    expect(stderr).toContain('--prime-with deny-no-such-row: not a scenario of npm run bench that runs here');
  }, 60_000);
});
