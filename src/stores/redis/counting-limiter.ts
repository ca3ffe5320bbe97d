// Counts every rate-limit check by policy and result (portcullis_ratelimit_decisions_total),
// whichever limiter (memory or Redis) does the counting.
import { Memo } from '../../plumbing/memo.ts';
import type { CounterChild } from '../../plumbing/metrics.ts';
import type { RateLimiter, RateLimitPolicy, RateLimitResult } from '../ratelimit.ts';
import type { RateLimitMetrics } from './metrics.ts';

export class CountingRateLimiter implements RateLimiter {
  // Counters per policy, one addition per Check (HotCounter). Policies come from config.
  private readonly children = new Memo<string, { allowed: CounterChild; limited: CounterChild; error: CounterChild }>(
    1024,
  );

  constructor(
    readonly inner: RateLimiter,
    private readonly metrics: RateLimitMetrics,
  ) {}

  private counters(policy: string) {
    let c = this.children.get(policy);
    if (!c) {
      const d = this.metrics.decisions;
      c = {
        allowed: d.child({ policy, result: 'allowed' }),
        limited: d.child({ policy, result: 'limited' }),
        error: d.child({ policy, result: 'error' }),
      };
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
