// Counts every rate-limit check by policy and result (portcullis_ratelimit_decisions_total),
// whichever limiter (memory or Redis) does the counting.
import type { Counter } from 'prom-client';
import type { RateLimiter, RateLimitPolicy, RateLimitResult } from '../ratelimit.ts';
import type { RateLimitMetrics } from './metrics.ts';

type Child = ReturnType<Counter<'policy' | 'result'>['labels']>;

export class CountingRateLimiter implements RateLimiter {
  // Label children cached per policy: no label hashing on the hot path. Policies come from config.
  private readonly children = new Map<string, { allowed: Child; limited: Child; error: Child }>();

  constructor(
    readonly inner: RateLimiter,
    private readonly metrics: RateLimitMetrics,
  ) {}

  private counters(policy: string) {
    let c = this.children.get(policy);
    if (!c) {
      const d = this.metrics.decisions;
      c = { allowed: d.labels(policy, 'allowed'), limited: d.labels(policy, 'limited'), error: d.labels(policy, 'error') };
      this.children.set(policy, c);
    }
    return c;
  }

  async hit(policy: RateLimitPolicy, key: string, nowMs: number): Promise<RateLimitResult> {
    const c = this.counters(policy.name);
    try {
      const r = await this.inner.hit(policy, key, nowMs);
      (r.allowed ? c.allowed : c.limited).inc();
      return r;
    } catch (e) {
      c.error.inc();
      throw e;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
