// Introspection answers by SHA-256 of the whole token: active answers until min(exp, max_ttl),
// rejected ones for negative_ttl. Two LRUs so a flood of bad tokens (negative entries) cannot
// evict the good ones. Expiry is checked against the injected clock, never beyond `exp`.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { InvalidTokenReason } from '../../core/reasons.ts';
import type { Identity } from '../../core/types.ts';

export type CachedAnswer =
  { active: true; identity: Identity; until: number } | { active: false; reason: InvalidTokenReason; until: number };

export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export class IntrospectionCache {
  private readonly positive: LRUCache<string, CachedAnswer>;
  private readonly negative: LRUCache<string, CachedAnswer>;
  private readonly maxTtlMs: number;
  private readonly negativeTtlMs: number;

  constructor(
    opts: { maxEntries: number; negativeMaxEntries: number; maxTtlSeconds: number; negativeTtlSeconds: number },
    private readonly now: () => number,
  ) {
    this.positive = new LRUCache({ max: opts.maxEntries });
    this.negative = new LRUCache({ max: opts.negativeMaxEntries });
    this.maxTtlMs = opts.maxTtlSeconds * 1000;
    this.negativeTtlMs = opts.negativeTtlSeconds * 1000;
  }

  get(key: string): CachedAnswer | undefined {
    const t = this.now();
    const p = this.positive.get(key);
    if (p) {
      if (p.until > t) return p;
      this.positive.delete(key);
    }
    const n = this.negative.get(key);
    if (n) {
      if (n.until > t) return n;
      this.negative.delete(key);
    }
    return undefined;
  }

  /** exp: the token's own expiry (seconds since epoch), when the answer had one. */
  putActive(key: string, identity: Identity, exp: number | undefined): void {
    const t = this.now();
    const until = Math.min(t + this.maxTtlMs, exp === undefined ? Infinity : exp * 1000);
    if (until <= t) return;
    this.negative.delete(key);
    this.positive.set(key, { active: true, identity, until });
  }

  putRejected(key: string, reason: InvalidTokenReason): void {
    if (this.negativeTtlMs <= 0) return;
    this.positive.delete(key);
    this.negative.set(key, { active: false, reason, until: this.now() + this.negativeTtlMs });
  }

  get sizes(): { positive: number; negative: number } {
    return { positive: this.positive.size, negative: this.negative.size };
  }

  clear(): void {
    this.positive.clear();
    this.negative.clear();
  }
}
