// The results as a Markdown table, for docs/performance.md and the README (`--markdown FILE`).
/** One scenario's results; bench/run.ts adds its per-run details. */
export interface BenchRow {
  scenario: string;
  driver: string;
  checksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ratioToFloor: number;
  /** Server CPU time per Check (user + system), robust to a busy machine; and its ratio floor/this. */
  cpuUsPerCheck: number;
  cpuRatioToFloor: number;
  peakRssMB: number;
  targetRatio?: number;
  met?: boolean;
  /** Lowest share, over the runs, of decisions under load that were the expected one (Portcullis's metrics). */
  expectedShare?: number;
  skipped?: string;
}

export function markdownTable(rows: BenchRow[]): string {
  const out = [
    '| scenario | driver | Checks/s | p50 ms | p99 ms | × floor | target | CPU µs/Check | CPU × floor | peak RSS | expected |',
    '|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    if (r.skipped) {
      out.push(`| \`${r.scenario}\` | ${r.driver} | skipped: ${r.skipped} | | | | | | | | |`);
      continue;
    }
    const target = r.targetRatio === undefined ? '' : `≥ ${r.targetRatio} ${r.met ? '✓' : '✗'}`;
    const share = r.expectedShare === undefined ? '' : `${(r.expectedShare * 100).toFixed(1)}%`;
    out.push(
      `| \`${r.scenario}\` | ${r.driver} | ${r.checksPerSecond} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.ratioToFloor.toFixed(2)} | ${target} | ${r.cpuUsPerCheck.toFixed(0)} | ${r.cpuRatioToFloor.toFixed(2)} | ${r.peakRssMB} MB | ${share} |`,
    );
  }
  return out.join('\n') + '\n';
}
