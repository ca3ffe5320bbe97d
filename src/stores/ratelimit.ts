// The in-memory (single node) rate limiter. The interface is the core's (src/core/deps.ts).
import type { RateLimiter, RateLimitPolicy, RateLimitResult } from '../core/deps.ts';

export type { RateLimiter, RateLimitPolicy, RateLimitResult } from '../core/deps.ts';

export const DEFAULT_MAX_KEYS = 100_000;

/** The counts of one policy's current window. */
interface PolicyWindow {
  windowMs: number;
  windowStart: number;
  counts: Map<string, number>;
  /** Requests of keys that arrived once `counts` was full: one budget for all of them. */
  overflow: number;
}

export interface MemoryRateLimiterOptions {
  /** A key arrived while its policy's window already counted maxKeys keys (throttle your own logs). */
  onOverflow?(policy: string): void;
  /** How often expired windows are dropped when no Check arrives to drop them. */
  sweepIntervalMs?: number;
}

/**
 * Fixed windows aligned to the epoch, so every replica agrees on window boundaries. All keys of a
 * policy share its window, so a window's counts are one Map, dropped whole when the window ends:
 * by the first hit of the next window, or by a sweep timer within `sweepIntervalMs` when no hit
 * comes. Memory therefore holds at most one window's keys per policy, at most `maxKeys` of them;
 * keys beyond that share one overflow budget until the window ends (docs/security.md, "Rate-limiter
 * memory"), so a flood of new keys can neither grow the map nor reset anyone's count.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, PolicyWindow>();
  private readonly timer: NodeJS.Timeout;
  // The sweep timer reads the callers' clock (decide's `now`, which tests move by hand) extrapolated
  // by the time elapsed since the last hit, never a second clock of its own.
  private lastNowMs = 0;
  private lastHitAt = 0;

  constructor(private readonly opts: MemoryRateLimiterOptions = {}) {
    this.timer = setInterval(
      () => this.sweep(this.lastNowMs + (performance.now() - this.lastHitAt)),
      opts.sweepIntervalMs ?? 1000,
    );
    this.timer.unref();
  }

  async hit(policy: RateLimitPolicy, key: string, nowMs: number): Promise<RateLimitResult> {
    this.lastNowMs = nowMs;
    this.lastHitAt = performance.now();
    const windowMs = policy.windowSeconds * 1000;
    const windowStart = nowMs - (nowMs % windowMs);
    let w = this.windows.get(policy.name);
    // A new window (or a reload that changed the policy's window) starts from nothing. A clock that
    // stepped back into the previous window keeps counting in the current one.
    if (!w || w.windowMs !== windowMs || windowStart > w.windowStart) {
      w = { windowMs, windowStart, counts: new Map(), overflow: 0 };
      this.windows.set(policy.name, w);
    }
    let count: number;
    const prev = w.counts.get(key);
    if (prev !== undefined) {
      count = prev + 1;
      w.counts.set(key, count);
    } else if (w.counts.size < (policy.maxKeys ?? DEFAULT_MAX_KEYS)) {
      count = 1;
      w.counts.set(key, count);
    } else {
      count = ++w.overflow;
      this.opts.onOverflow?.(policy.name);
    }
    const resetSeconds = Math.max(1, Math.ceil((w.windowStart + windowMs - nowMs) / 1000));
    return { allowed: count <= policy.limit, remaining: Math.max(0, policy.limit - count), resetSeconds };
  }

  /** Drops every window that has ended by `nowMs`. */
  sweep(nowMs: number): void {
    for (const [name, w] of this.windows) if (w.windowStart + w.windowMs <= nowMs) this.windows.delete(name);
  }

  /** Keys held across all policies (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const w of this.windows.values()) n += w.counts.size;
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.windows.clear();
  }
}
