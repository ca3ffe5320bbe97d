// The results as a Markdown table, for docs/performance.md and the README (`--markdown FILE`).
interface Row {
  scenario: string;
  driver: string;
  checksPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ratioToFloor: number;
  cpuUsPerCheck: number;
  cpuRatioToFloor: number;
  peakRssMB: number;
  targetRatio?: number;
  met?: boolean;
  expectedShare?: number;
  skipped?: string;
}

export function markdownTable(rows: Row[]): string {
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
