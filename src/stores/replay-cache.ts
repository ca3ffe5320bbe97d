// Single use of DPoP proofs (RFC 9449, §11.1): a proof's `jti` is remembered until the proof would
// be refused for its age anyway, and a second use within that time is a replay.
//
// Keys are replayKey(jkt, jti): a hash, so neither the client's jti (any string up to the limit)
// nor its key is stored, and every entry has the same small size. The in-memory cache serves one
// replica; with a `redis` section, stores/redis/replay-cache.ts shares the answer across replicas.
import { hash } from 'node:crypto';

export interface ReplayCache {
  /**
   * Records `key` until `expiresAtMs` (ms since the epoch) and says whether it was already there:
   * false the first time, true for a replay. Throws DependencyUnavailableError when it cannot
   * tell (a shared backend down, and the configuration says deny).
   */
  seen(key: string, expiresAtMs: number): Promise<boolean>;
}

/** The cache key of a proof: base64url(SHA-256(len(jkt) ":" jkt jti)), 43 characters. */
export function replayKey(jkt: string, jti: string): string {
  return hash('sha256', `${jkt.length}:${jkt}${jti}`, 'base64url');
}

export const DEFAULT_REPLAY_CACHE_ENTRIES = 200_000;

export interface MemoryReplayCacheOptions {
  /** Most proofs remembered at once (≥ 1). */
  maxEntries?: number;
  /**
   * Called when the cache is full and forgets a proof that has not expired yet (a replay of that
   * proof would no longer be noticed): count it and tell the operator to raise maxEntries.
   */
  onEvictUnexpired?(): void;
}

/**
 * Proofs remembered in this process. A Map in insertion order: expired entries are dropped from
 * its head as new ones arrive. When `maxEntries` unexpired proofs are held, the oldest is
 * forgotten (and reported) rather than refusing every new proof: size it for peak proofs per
 * second × (max_age_seconds + 2 × clock skew).
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;
  private lastFullSweep = -Infinity;

  constructor(private readonly opts: MemoryReplayCacheOptions = {}) {
    this.maxEntries = Math.max(1, Math.floor(opts.maxEntries ?? DEFAULT_REPLAY_CACHE_ENTRIES));
  }

  get size(): number {
    return this.entries.size;
  }

  async seen(key: string, expiresAtMs: number): Promise<boolean> {
    return this.seenNow(key, expiresAtMs, Date.now());
  }

  /** Synchronous form, with the clock passed in (tests, and the Redis cache's local front). */
  seenNow(key: string, expiresAtMs: number, nowMs: number): boolean {
    const known = this.entries.get(key);
    if (known !== undefined && known > nowMs) return true;
    if (known !== undefined) this.entries.delete(key);
    this.dropExpired(nowMs);
    if (expiresAtMs <= nowMs) return false; // nothing left to protect
    if (this.entries.size >= this.maxEntries && nowMs - this.lastFullSweep >= 1000) {
      // Entries expire a little out of insertion order: look at all of them before forgetting a
      // live one (at most once a second, so that a cache full of live proofs stays cheap).
      this.lastFullSweep = nowMs;
      for (const [k, exp] of this.entries) if (exp <= nowMs) this.entries.delete(k);
    }
    if (this.entries.size >= this.maxEntries) {
      const [oldest, exp] = this.entries.entries().next().value as [string, number];
      this.entries.delete(oldest);
      if (exp > nowMs) this.opts.onEvictUnexpired?.();
    }
    this.entries.set(key, expiresAtMs);
    return false;
  }

  /** Drops expired entries from the head (insertion order is close to expiry order). */
  private dropExpired(nowMs: number): void {
    let budget = 64; // bounded work per call; the rest goes on the next calls
    for (const [key, exp] of this.entries) {
      if (exp > nowMs || budget-- === 0) break;
      this.entries.delete(key);
    }
  }
}
