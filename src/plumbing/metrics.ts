// Metric helpers shared by every component. Components are rebuilt on every config reload while
// the process keeps one registry, and prom-client refuses a second metric of the same name: so a
// component asks the registry first (registeredMetric). Counters on the Check path count through
// HotCounter children.
import { Counter, type CounterConfiguration, type LabelValues, type Registry } from 'prom-client';

/** The metric of this name already in `registry`, or the one `create` registers there. */
export function registeredMetric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export interface CounterChild {
  inc(): void;
}

class PendingCount implements CounterChild {
  n = 0;
  constructor(readonly labels: LabelValues<string>) {}
  inc(): void {
    this.n++;
  }
}

const byRegistry = new WeakMap<Registry, Map<string, HotCounter<string>>>();

/**
 * A counter for the Check path. prom-client validates and hashes a label set on every inc(),
 * children included; a HotCounter child only adds to a plain number, and the counter's `collect`
 * hook (prom-client's own way to compute a metric at read time, run before every scrape, text or
 * the cluster's JSON alike) hands the sums to the counter. A scrape therefore sees every increment
 * made before it. For label sets bounded by code and config: a child lives as long as its counter.
 */
export class HotCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly pending = new Map<string, PendingCount>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    const pending = this.pending;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        for (const p of pending.values()) {
          if (p.n === 0) continue;
          this.inc(p.labels as LabelValues<L>, p.n);
          p.n = 0;
        }
      },
    });
  }

  /** The counter named `config.name` in `registry`, created there the first time. */
  static in<L extends string>(
    registry: Registry,
    config: Omit<CounterConfiguration<L>, 'collect' | 'registers'>,
  ): HotCounter<L> {
    let counters = byRegistry.get(registry);
    if (!counters) byRegistry.set(registry, (counters = new Map<string, HotCounter<string>>()));
    let c = counters.get(config.name) as HotCounter<L> | undefined;
    if (!c) {
      c = new HotCounter<L>({ ...config, registers: [registry] });
      counters.set(config.name, c);
    }
    return c;
  }

  /** The child of one label set; asking again for the same labels gives the same child. */
  child(labels: LabelValues<L>): CounterChild {
    const key = JSON.stringify(labels);
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = new PendingCount(labels)));
    return p;
  }

  /** For label sets that are not on the Check path: prom-client's own inc. */
  inc(labels: LabelValues<L>, value = 1): void {
    this.counter.inc(labels, value);
  }
}
