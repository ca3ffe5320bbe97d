// What decide() is given besides the request and the policy: the verifier of each credential kind,
// the rate limiter, the phantom-token minter and the clock. The runtime builds them from the config
// (src/runtime/components.ts, src/credentials/registry.ts); tests hand in their own.
import type { RouteRule } from './policy.ts';
import type { ProofOfPossession } from './sender-constraint.ts';
import type { AuthzRequest, CredentialKind, Identity } from './types.ts';

/**
 * One credential kind's check. Resolves to the caller's identity (built by newIdentity), or throws
 * one of the errors of errors.ts: InvalidCredentialError (401), ForbiddenCredentialError (403),
 * DependencyUnavailableError (503). Anything else thrown is a bug and is denied as internal_error.
 */
export interface CredentialVerifier {
  /**
   * `credential` is the value extracted from the request (extractCredential), already bounded by
   * max_credential_bytes; `sourceIp` is the client address (after source_ip_header).
   */
  verify(credential: string, request: AuthzRequest, route: RouteRule, sourceIp: string): Promise<Identity>;
}

/** The verifier of each configured kind; a kind without one is refused (`<kind>_not_configured`). */
export type Verifiers = { readonly [K in CredentialKind]?: CredentialVerifier };

export interface RateLimitPolicy {
  name: string;
  limit: number;
  windowSeconds: number;
  /** In memory: distinct keys counted at once per window; beyond, new keys share an overflow budget. */
  maxKeys?: number;
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

export interface DecideDeps {
  /** Milliseconds since epoch. */
  now(): number;
  verifiers: Verifiers;
  rateLimiter?: RateLimiter;
  /** Phantom token: a JWT minted for the upstream in place of the client's credential. */
  phantomToken?(identity: Identity, route: string): Promise<string | undefined>;
  /** Called when a rate limiter failure was let through (on_redis_error: allow). */
  onRateLimiterError?(policy: string, err: Error): void;
  /** DPoP proofs and certificate-bound tokens (sender-constraint.ts); without it a bound token is refused. */
  pop?: ProofOfPossession;
}
