// What decide() reads of the config: the compiled policy, as interfaces. src/policy/ builds it
// from the validated config (compilePolicy); the core only knows these shapes, so it depends on no
// config format.
import type { RouteConditions } from './conditions.ts';
import type { ExtractOptions } from './credential.ts';
import type { ResourceGuards } from './protected-resource.ts';
import type { CredentialKind, HeaderSet, Identity } from './types.ts';

/** `routes[].sender_constraint`: the proof of possession a route demands (sender-constraint.ts). */
export type SenderConstraint = 'none' | 'dpop' | 'mtls' | 'any';

/** A route as the decision sees it (matching is the RouteMatcher's business). */
export interface RouteRule {
  readonly name: string;
  readonly public: boolean;
  /** Credential kinds accepted (empty on a public route). */
  readonly auth: ReadonlySet<CredentialKind>;
  /** Scopes that must all be granted. */
  readonly scopes: readonly string[];
  /** Name of the rate limit that applies, if any. */
  readonly rateLimit?: string;
  /** `when`: conditions that must all hold (after the credential and scopes on a protected route). */
  readonly conditions?: RouteConditions;
  /** `mode: shadow`: the decision is made and recorded, and the request allowed (shadow.ts). */
  readonly shadow?: boolean;
  /** The proof of possession the route demands (default none). */
  readonly senderConstraint?: SenderConstraint;
}

export interface RouteMatcher {
  /**
   * First route whose method, host and path match; `host` canonical (normalizeHost), `path` normalized
   * (normalizePath).
   */
  match(method: string, host: string, path: string): RouteRule | undefined;
  /** The route Envoy pinned by name (context extension `portcullis.route`). */
  byName(name: string): RouteRule | undefined;
}

/** Header hygiene (src/policy/headers.ts). */
export interface HeaderRules {
  /**
   * Trusted identity headers for an allowed request. The same identity and route give the same
   * frozen list (the encoder's reuse of allow bytes relies on it). Throws UnsafeHeaderValueError
   * when a value may not reach the upstream.
   */
  identityHeaders(identity: Identity | undefined, route: string): readonly HeaderSet[];
  /** Headers to remove for an allowed request: never one that is in `set`. */
  removals(
    requestHeaders: Record<string, string>,
    set: readonly HeaderSet[],
    credentialHeaders: readonly string[],
  ): string[];
}

export interface RateLimitRule {
  readonly name: string;
  /** What is counted: one budget per client, API key, source address or subject. */
  readonly key: 'client_id' | 'key_id' | 'source_ip' | 'subject';
  readonly limit: number;
  readonly window_seconds: number;
  readonly ipv4_prefix_length: number;
  readonly ipv6_prefix_length: number;
  /** In memory: distinct keys counted per window. */
  readonly max_keys?: number;
  /** When the limiter's backend fails: let the request through, or deny with 503. */
  readonly on_redis_error: 'allow' | 'deny';
}

export interface CompiledPolicy {
  readonly realm: string;
  readonly routes: RouteMatcher;
  readonly headers: HeaderRules;
  readonly extract: ExtractOptions;
  /** Headers that carry credentials: removed before the upstream unless forward_credentials. */
  readonly credentialHeaders: readonly string[];
  readonly rateLimits: ReadonlyMap<string, RateLimitRule>;
  readonly maxCredentialBytes: number;
  /** source_ip_header: where the client address is read, and how many appending proxies to skip. */
  readonly sourceIp?: { readonly header: string; readonly trustedHops: number };
  /** Query parameters that carry a credential (lower case): RFC 6750 access_token, the API-key parameter. */
  readonly queryCredentialNames: readonly string[];
  /** Routes of protected resources, MCP routes, step-up routes (src/resources/); undefined when none. */
  readonly resources?: ResourceGuards;
}
