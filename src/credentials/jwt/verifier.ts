// JWT access token verification for decide(): cache, issuer selection by the unverified `iss`,
// header and claim checks, key resolution, signature (node:crypto, signature.ts), identity.
//
// Order matters for cost, not for safety: everything before the signature only ever rejects.
// A token is accepted only after its signature verified with a key of the issuer the token
// names, for the algorithm that key is allowed, over the very bytes the checks read.
import { DependencyUnavailableError, InvalidCredentialError } from '../../core/errors.ts';
import type { InvalidTokenReason } from '../../core/reasons.ts';
import type { CredentialVerifier } from '../../core/deps.ts';
import type { Identity } from '../../core/types.ts';
import { checkClaims, checkHeader, type IssuerPolicy } from './issuer-policy.ts';
import type { JwksManager } from './jwks-manager.ts';
import type { JwtMetrics } from './metrics.ts';
import { TokenCache, tokenHash } from './token-cache.ts';
import { parseToken } from './token-parts.ts';
import { signatureValid } from './signature.ts';

export interface IssuerRuntime {
  policy: IssuerPolicy;
  jwks: JwksManager;
}

/** Rejections whose answer can change with time or a key refresh: never remembered. */
const NOT_CACHED = new Set<InvalidTokenReason>([
  'jwt_not_yet_valid',
  'jwt_issued_in_future',
  'jwt_kid_unknown',
  'jwt_key_alg_mismatch',
  'jwt_kid_missing',
]);

export class JwtVerifier implements CredentialVerifier {
  private readonly byIssuer: Map<string, IssuerRuntime>;

  constructor(
    issuers: IssuerRuntime[],
    private readonly cache: TokenCache,
    private readonly metrics: JwtMetrics,
    private readonly now: () => number = Date.now,
  ) {
    this.byIssuer = new Map(issuers.map((i) => [i.policy.issuer, i]));
  }

  async verify(token: string): Promise<Identity> {
    const nowMs = this.now();
    const hash = tokenHash(token);
    const cached = this.cache.getVerified(hash, nowMs);
    if (cached) {
      this.metrics.verifiedHit.inc();
      return cached;
    }
    this.metrics.verifiedMiss.inc();
    const rejected = this.cache.getRejected(hash, nowMs);
    if (rejected) {
      this.metrics.rejectedHit.inc();
      throw new InvalidCredentialError(rejected);
    }

    let issuerLabel = 'unknown';
    try {
      const parts = parseToken(token);
      const iss = parts.payload.iss;
      const issuer = typeof iss === 'string' ? this.byIssuer.get(iss) : undefined;
      if (!issuer) throw new InvalidCredentialError('jwt_issuer_unknown');
      issuerLabel = issuer.policy.issuer;

      checkHeader(issuer.policy, parts);
      const identity = checkClaims(issuer.policy, parts.payload, nowMs);
      const key = issuer.jwks.loadedKey(parts.kid, parts.alg) ?? (await issuer.jwks.keyFor(parts.kid, parts.alg));

      // The signing input is this token's own `header.payload` text, the same segments the
      // header and claim checks above decoded: what was checked is what was signed.
      if (!signatureValid(token, key)) throw new InvalidCredentialError('jwt_signature_invalid');

      // Time may have passed while a key was fetched: the cache bound uses the original clock,
      // which is the earlier (more conservative) one for the ttl and exact for exp.
      this.cache.setVerified(hash, identity, key, issuer.jwks, nowMs);
      this.metrics.verification(issuerLabel, 'valid');
      return identity;
    } catch (e) {
      if (e instanceof InvalidCredentialError) {
        this.metrics.verification(issuerLabel, e.reason);
        if (!NOT_CACHED.has(e.reason)) this.cache.setRejected(hash, e.reason, nowMs);
      } else if (e instanceof DependencyUnavailableError) {
        this.metrics.verification(issuerLabel, e.reason);
      } else {
        this.metrics.verification(issuerLabel, 'internal_error');
      }
      throw e;
    }
  }
}
