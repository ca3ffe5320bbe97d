// Hot-path counters (src/plumbing/metrics.ts, HotCounter): counted in plain numbers, handed to
// prom-client by the counter's collect hook. What a scrape shows must be exactly what prom-client's
// own children show.
import { AggregatorRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter } from '../../src/plumbing/metrics.ts';

const valueOf = async (r: Registry, name: string, labels: Record<string, string>) => {
  const m = (await r.getMetricsAsJSON()).find((x) => x.name === name)!;
  return (m.values as Array<{ labels: Record<string, string>; value: number }>).find((v) =>
    Object.entries(labels).every(([k, x]) => v.labels[k] === x),
  )?.value;
};

describe('HotCounter', () => {
  it('a scrape sees every increment before it, once, in text and JSON alike', async () => {
    const r = new Registry();
    const c = new HotCounter({ name: 't_total', help: 'h', labelNames: ['a', 'b'], registers: [r] });
    const x = c.child({ a: '1', b: 'x' });
    const y = c.child({ a: '2', b: 'y' });
    for (let i = 0; i < 5; i++) x.inc();
    y.inc();
    expect(await r.metrics()).toContain('t_total{a="1",b="x"} 5');
    expect(await r.metrics()).toContain('t_total{a="2",b="y"} 1'); // a second scrape adds nothing
    x.inc();
    expect(await valueOf(r, 't_total', { a: '1' })).toBe(6);
    expect(await valueOf(r, 't_total', { a: '2' })).toBe(1);
  });

  it('the same labels share one count, and the same name in one registry is one counter (a config reload asks again)', async () => {
    const r = new Registry();
    const config = { name: 'u_total', help: 'h', labelNames: ['p'] as const };
    HotCounter.in(r, { ...config, labelNames: [...config.labelNames] })
      .child({ p: 'a' })
      .inc();
    HotCounter.in(r, { ...config, labelNames: [...config.labelNames] })
      .child({ p: 'a' })
      .inc();
    expect(await r.metrics()).toContain('u_total{p="a"} 2');
    // A label set never incremented does not appear, as with prom-client's own children.
    HotCounter.in(r, { ...config, labelNames: [...config.labelNames] }).child({ p: 'never' });
    expect(await r.metrics()).not.toContain('p="never"');
  });

  it('cluster aggregation (each worker scraped as JSON) sums what the workers counted', async () => {
    const workers = [new Registry(), new Registry()];
    workers.forEach((r, i) => {
      const child = new HotCounter({ name: 'w_total', help: 'h', labelNames: ['k'], registers: [r] }).child({ k: 'v' });
      for (let n = 0; n <= i; n++) child.inc();
    });
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    expect(await merged.metrics()).toContain('w_total{k="v"} 3');
  });
});
