// Counters for the hot path. A prom-client 15 label child (`counter.labels(...)`) still validates
// and hashes its labels on every inc(): ~0.3 µs, measured, on every Check. These children count in
// a plain number instead and hand the sums to prom-client when the registry is read: a metric's
// `collect` hook runs before every scrape (text and the cluster's JSON alike), so a scrape always
// sees every increment made before it.
// For bounded label sets only (code- and config-defined values): a label set's count lives as long
// as its counter, and asking again for the same labels (a config reload) shares it.
import type { Counter, LabelValues } from 'prom-client';

export interface CounterChild {
  inc(): void;
}

interface Pending {
  labels: LabelValues<string>;
  n: number;
}

export function counterChild<T extends string>(counter: Counter<T>, labels: LabelValues<T>): CounterChild {
  const c = counter as unknown as Counter<string>;
  const e = pendingFor(
    c,
    labels,
    (): Pending => ({ labels, n: 0 }),
    (p) => {
      if (p.n > 0) {
        c.inc(p.labels, p.n);
        p.n = 0;
      }
    },
  );
  return {
    inc: () => {
      e.n++;
    },
  };
}

const pendingOf = new WeakMap<object, Map<string, unknown>>();

/**
 * The pending entry of one label set of `metric` (made by `make` the first time; the same labels
 * share it). Before every read of the metric (its `collect` hook, ahead of the metric's own),
 * `fold` runs for each of its entries. Shared by the counter and histogram children.
 */
export function pendingFor<P>(metric: object, labels: LabelValues<string>, make: () => P, fold: (p: P) => void): P {
  let all = pendingOf.get(metric) as Map<string, P> | undefined;
  if (!all) {
    const entries = (all = new Map<string, P>());
    pendingOf.set(metric, entries);
    const m = metric as { collect?: (this: unknown) => unknown };
    const own = m.collect;
    m.collect = function (this: unknown) {
      for (const p of entries.values()) fold(p);
      return own?.call(this);
    };
  }
  const key = JSON.stringify(labels);
  let p = all.get(key);
  if (p === undefined) all.set(key, (p = make()));
  return p;
}
