// The verified-token and rejection caches: bounded LRUs keyed by the SHA-256 of the whole token
// (never the token itself). A verified entry expires at min(exp, now + ttl) and only while the key
// that verified it is still published; a rejection is remembered briefly so floods of one bad
// token cost a hash and a lookup.
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { InvalidTokenReason } from '../../core/reasons.ts';
import type { Identity } from '../../core/types.ts';
import type { VerificationKey } from './key-set.ts';

/** SHA-256 of the whole token (one-shot crypto.hash: no Hash object per Check). */
export function tokenHash(token: string): string {
  return hash('sha256', token, 'base64url');
}

/** Whoever knows whether a key is still published (the issuer's JwksManager). */
export interface KeyLiveness {
  isLive(key: VerificationKey): boolean;
}

interface VerifiedEntry {
  identity: Identity;
  /** ms since epoch. */
  expiresAt: number;
  key: VerificationKey;
  keys: KeyLiveness;
}

interface RejectedEntry {
  reason: InvalidTokenReason;
  expiresAt: number;
}

export interface TokenCacheOptions {
  maxEntries: number;
  ttlSeconds: number;
  rejectedMaxEntries: number;
  rejectedTtlSeconds: number;
}

export class TokenCache {
  private readonly verified?: LRUCache<string, VerifiedEntry>;
  private readonly rejected?: LRUCache<string, RejectedEntry>;

  constructor(private readonly opts: TokenCacheOptions) {
    if (opts.maxEntries > 0 && opts.ttlSeconds > 0) this.verified = new LRUCache({ max: opts.maxEntries });
    if (opts.rejectedMaxEntries > 0 && opts.rejectedTtlSeconds > 0)
      this.rejected = new LRUCache({ max: opts.rejectedMaxEntries });
  }

  getVerified(hash: string, nowMs: number): Identity | undefined {
    const e = this.verified?.get(hash);
    if (!e) return undefined;
    if (e.expiresAt <= nowMs || !e.keys.isLive(e.key)) {
      this.verified!.delete(hash);
      return undefined;
    }
    return e.identity;
  }

  setVerified(hash: string, identity: Identity, key: VerificationKey, keys: KeyLiveness, nowMs: number): void {
    if (!this.verified) return;
    // No cached decision outlives the token's exp (docs/jwt.md).
    const expiresAt = Math.min((identity.expiresAt ?? 0) * 1000, nowMs + this.opts.ttlSeconds * 1000);
    if (expiresAt <= nowMs) return;
    this.verified.set(hash, { identity, expiresAt, key, keys });
  }

  getRejected(hash: string, nowMs: number): InvalidTokenReason | undefined {
    const e = this.rejected?.get(hash);
    if (!e) return undefined;
    if (e.expiresAt <= nowMs) {
      this.rejected!.delete(hash);
      return undefined;
    }
    return e.reason;
  }

  setRejected(hash: string, reason: InvalidTokenReason, nowMs: number): void {
    this.rejected?.set(hash, { reason, expiresAt: nowMs + this.opts.rejectedTtlSeconds * 1000 });
  }

  get sizes(): { verified: number; rejected: number } {
    return { verified: this.verified?.size ?? 0, rejected: this.rejected?.size ?? 0 };
  }
}
