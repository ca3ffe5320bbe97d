// Prometheus metrics. One registry per process; credential modules register theirs on it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision } from '../core/types.ts';
import { counterChild, type CounterChild } from './counter-child.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly decisions: Counter<'decision' | 'status' | 'reason' | 'route' | 'credential'>;
  readonly checkDuration: Histogram<'decision'>;
  readonly configReloads: Counter<'result'>;
  readonly ready: Gauge;
  readonly keyStoreKeys: Gauge;
  readonly internalErrors: Counter;
  // Histogram children, resolved once: no labels object per Check. (prom-client 15 still validates
  // and hashes a child's labels on every observe: ~0.2 µs, measured.)
  private readonly allowDuration: { observe(v: number): void };
  private readonly denyDuration: { observe(v: number): void };

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
    this.decisions = new Counter({
      name: 'portcullis_decisions_total',
      help: 'Check decisions by result, HTTP status, reason, route and credential kind',
      labelNames: ['decision', 'status', 'reason', 'route', 'credential'],
      registers,
    });
    this.checkDuration = new Histogram({
      name: 'portcullis_check_duration_seconds',
      help: 'Time from Check received to decision, in seconds',
      labelNames: ['decision'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5],
      registers,
    });
    this.allowDuration = this.checkDuration.labels('allow');
    this.denyDuration = this.checkDuration.labels('deny');
    this.configReloads = new Counter({ name: 'portcullis_config_reloads_total', help: 'Config reloads by result', labelNames: ['result'], registers });
    this.ready = new Gauge({ name: 'portcullis_ready', help: '1 when every dependency the config names is ready', registers });
    this.keyStoreKeys = new Gauge({ name: 'portcullis_keystore_keys', help: 'API key records in the local copy of the key store', registers });
    this.internalErrors = new Counter({ name: 'portcullis_internal_errors_total', help: 'Unexpected errors (each denied with 503); see the error log', registers });
  }

  private readonly children = new Map<string, CounterChild>();

  /** Counts a decision: one addition on the hot path (counter-child.ts), summed into prom-client at scrape. */
  countDecision(d: Decision, seconds: number): void {
    this.decisionCounter(d).inc();
    (d.allowed ? this.allowDuration : this.denyDuration).observe(seconds);
  }

  private decisionCounter(d: Decision): CounterChild {
    const credential = d.identity?.method ?? (d.allowed ? 'none' : (d.credential ?? 'none'));
    const route = d.route ?? '';
    const key = `${d.allowed ? 1 : 0}|${d.status}|${d.reason}|${route}|${credential}`;
    let c = this.children.get(key);
    if (!c) {
      const labels = { decision: d.allowed ? 'allow' : 'deny', status: String(d.status), reason: d.reason, route, credential };
      // Reasons and routes are bounded by code and config; the cap guards against a bug.
      if (this.children.size >= 10_000) return { inc: () => this.decisions.inc(labels) };
      this.children.set(key, (c = counterChild(this.decisions, labels)));
    }
    return c;
  }
}
