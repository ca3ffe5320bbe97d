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

const pendingOf = new WeakMap<Counter<string>, Map<string, Pending>>();

export function counterChild<T extends string>(counter: Counter<T>, labels: LabelValues<T>): CounterChild {
  const c = counter as unknown as Counter<string>;
  let pending = pendingOf.get(c);
  if (!pending) {
    const all = (pending = new Map<string, Pending>());
    pendingOf.set(c, all);
    foldBeforeCollect(c, () => {
      for (const e of all.values()) {
        if (e.n > 0) {
          c.inc(e.labels, e.n);
          e.n = 0;
        }
      }
    });
  }
  const key = JSON.stringify(labels);
  let entry = pending.get(key);
  if (!entry) pending.set(key, (entry = { labels, n: 0 }));
  const e = entry;
  return {
    inc: () => {
      e.n++;
    },
  };
}

/** Runs `fold` first whenever prom-client reads the metric (its `collect` hook), then the metric's own hook. */
export function foldBeforeCollect(metric: object, fold: () => void): void {
  const m = metric as { collect?: (this: unknown) => unknown };
  const own = m.collect;
  m.collect = function (this: unknown) {
    fold();
    return own?.call(this);
  };
}
