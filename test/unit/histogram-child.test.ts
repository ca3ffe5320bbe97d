// Hot-path histogram children (src/runtime/histogram-child.ts): observations kept in plain numbers
// and folded into prom-client's entry at scrape. The exposition must be exactly what a plain
// prom-client histogram shows for the same values: this is also the guard on the prom-client
// internals the fold writes.
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { histogramChild } from '../../src/runtime/histogram-child.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
// On bounds, between them, below the first, above the last (only +Inf and count), and zero.
const VALUES = [0.0005, 0.001, 0.003, 0.01, 0.05, 0.1, 0.7, 1, 2.5, 30, 0, 0.001];

// Series order follows first use, which is not part of the format: compare the lines as a set.
const lines = async (r: Registry) => (await r.metrics()).split('\n').sort();

function pair() {
  const mine = new Registry();
  const ref = new Registry();
  const m = new Histogram({ name: 'd_seconds', help: 'h', labelNames: ['decision'], buckets: BUCKETS, registers: [mine] });
  const r = new Histogram({ name: 'd_seconds', help: 'h', labelNames: ['decision'], buckets: BUCKETS, registers: [ref] });
  return { mine, ref, m, r };
}

describe('histogramChild', () => {
  it('a scrape shows what prom-client itself shows for the same observations, buckets, sum and count', async () => {
    const { mine, ref, m, r } = pair();
    const allow = histogramChild(m, { decision: 'allow' });
    const deny = histogramChild(m, { decision: 'deny' });
    VALUES.forEach((v, i) => {
      (i % 3 ? allow : deny).observe(v);
      r.observe({ decision: i % 3 ? 'allow' : 'deny' }, v);
    });
    expect(await lines(mine)).toEqual(await lines(ref));
    expect(await mine.metrics()).toContain('d_seconds_count{decision="allow"} 8');
    // Later observations are added once to what the first scrape folded in.
    allow.observe(0.02);
    r.observe({ decision: 'allow' }, 0.02);
    expect(await lines(mine)).toEqual(await lines(ref));
    expect(await lines(mine)).toEqual(await lines(ref));
    const json = async (r: Registry) => (await r.getMetricsAsJSON())[0].values.map((v) => JSON.stringify(v)).sort();
    expect(await json(mine)).toEqual(await json(ref));
  });

  it('the same labels share one entry; a label set never observed does not appear; non-finite values are dropped', async () => {
    const { mine, m } = pair();
    histogramChild(m, { decision: 'allow' }).observe(0.002);
    histogramChild(m, { decision: 'allow' }).observe(0.002);
    histogramChild(m, { decision: 'never' });
    histogramChild(m, { decision: 'allow' }).observe(Number.NaN);
    const text = await mine.metrics();
    expect(text).toContain('d_seconds_count{decision="allow"} 2');
    expect(text).toContain('d_seconds_sum{decision="allow"} 0.004');
    expect(text).not.toContain('never');
  });

  it('survives reset() (the entry is made again) and keeps other collect hooks', async () => {
    const reg = new Registry();
    let collected = 0;
    const h = new Histogram({ name: 'e_seconds', help: 'h', labelNames: ['k'], buckets: BUCKETS, registers: [reg], collect() { collected++; } });
    const c = histogramChild(h, { k: 'v' });
    c.observe(0.5);
    await reg.metrics();
    h.reset();
    c.observe(0.05);
    const text = await reg.metrics();
    expect(text).toContain('e_seconds_count{k="v"} 1');
    expect(text).toContain('e_seconds_bucket{le="0.1",k="v"} 1');
    expect(collected).toBe(2);
  });

  it('cluster aggregation (each worker read as JSON) sums the workers', async () => {
    const workers = [new Registry(), new Registry()];
    workers.forEach((reg, i) => {
      const h = new Histogram({ name: 'w_seconds', help: 'h', labelNames: ['k'], buckets: BUCKETS, registers: [reg] });
      const c = histogramChild(h, { k: 'v' });
      for (let n = 0; n <= i; n++) c.observe(0.005);
    });
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    const text = await merged.metrics();
    expect(text).toContain('w_seconds_count{k="v"} 3');
    expect(text).toContain('w_seconds_bucket{le="0.01",k="v"} 3');
    expect(text).toContain('w_seconds_bucket{le="0.001",k="v"} 0');
  });
});
