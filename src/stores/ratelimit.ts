// Rate limiter interface and the in-memory (single node) implementation.

export interface RateLimitPolicy {
  name: string;
  limit: number;
  windowSeconds: number;
}

export interface RateLimitResult {
  allowed: boolean;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export interface RateLimiter {
  /** Counts one request for `key` under `policy`. Throws DependencyUnavailableError if its backend is down. */
  hit(policy: RateLimitPolicy, key: string, nowMs: number): Promise<RateLimitResult>;
  close(): Promise<void>;
}

/** Fixed windows aligned to the epoch, so every replica agrees on window boundaries. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { windowStart: number; count: number }>();
  private sweeps = 0;

  async hit(policy: RateLimitPolicy, key: string, nowMs: number): Promise<RateLimitResult> {
    const windowMs = policy.windowSeconds * 1000;
    const windowStart = nowMs - (nowMs % windowMs);
    const id = `${policy.name}\0${key}`;
    let w = this.windows.get(id);
    if (!w || w.windowStart !== windowStart) {
      w = { windowStart, count: 0 };
      this.windows.set(id, w);
    }
    w.count++;
    if (++this.sweeps % 10_000 === 0) this.sweep(nowMs);
    const resetSeconds = Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000));
    return { allowed: w.count <= policy.limit, remaining: Math.max(0, policy.limit - w.count), resetSeconds };
  }

  private sweep(nowMs: number): void {
    // Windows are per policy; an entry whose window began over 30 days ago is certainly over.
    for (const [id, w] of this.windows) if (nowMs - w.windowStart > 30 * 86400_000) this.windows.delete(id);
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}
