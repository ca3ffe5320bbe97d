// Percentiles over latency samples (milliseconds).

/** Sorts in place and returns the given percentiles (0-100), nearest-rank. */
export function percentiles(samples: Float64Array | number[], ps: number[]): number[] {
  const a = samples instanceof Float64Array ? samples : Float64Array.from(samples);
  a.sort();
  if (a.length === 0) return ps.map(() => NaN);
  return ps.map((p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil((p / 100) * a.length) - 1))]);
}

export function mean(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

export function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  if (!a.length) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}
