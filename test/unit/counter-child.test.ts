// Hot-path counter children (src/runtime/counter-child.ts): counted in plain numbers, handed to
// prom-client at scrape. What a scrape shows must be exactly what prom-client's own children show.
import { AggregatorRegistry, Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { counterChild } from '../../src/runtime/counter-child.ts';

const valueOf = async (r: Registry, name: string, labels: Record<string, string>) => {
  const m = (await r.getMetricsAsJSON()).find((x) => x.name === name)!;
  return (m.values as Array<{ labels: Record<string, string>; value: number }>).find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
};

describe('counterChild', () => {
  it('a scrape sees every increment before it, once, in text and JSON alike', async () => {
    const r = new Registry();
    const c = new Counter({ name: 't_total', help: 'h', labelNames: ['a', 'b'], registers: [r] });
    const x = counterChild(c, { a: '1', b: 'x' });
    const y = counterChild(c, { a: '2', b: 'y' });
    for (let i = 0; i < 5; i++) x.inc();
    y.inc();
    expect(await r.metrics()).toContain('t_total{a="1",b="x"} 5');
    expect(await r.metrics()).toContain('t_total{a="2",b="y"} 1'); // a second scrape adds nothing
    x.inc();
    expect(await valueOf(r, 't_total', { a: '1' })).toBe(6);
    expect(await valueOf(r, 't_total', { a: '2' })).toBe(1);
  });

  it('the same labels share one count (a config reload asks again); other collect hooks still run', async () => {
    const r = new Registry();
    let collected = 0;
    const c = new Counter({
      name: 'u_total',
      help: 'h',
      labelNames: ['p'],
      registers: [r],
      collect() {
        collected++;
      },
    });
    counterChild(c, { p: 'a' }).inc();
    counterChild(c, { p: 'a' }).inc();
    expect(await r.metrics()).toContain('u_total{p="a"} 2');
    expect(collected).toBe(1);
    // A label set never incremented does not appear, as with prom-client's own children.
    counterChild(c, { p: 'never' });
    expect(await r.metrics()).not.toContain('p="never"');
  });

  it('cluster aggregation (each worker scraped as JSON) sums what the workers counted', async () => {
    const workers = [new Registry(), new Registry()];
    workers.forEach((r, i) => {
      const c = new Counter({ name: 'w_total', help: 'h', labelNames: ['k'], registers: [r] });
      const child = counterChild(c, { k: 'v' });
      for (let n = 0; n <= i; n++) child.inc();
    });
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    expect(await merged.metrics()).toContain('w_total{k="v"} 3');
  });
});
