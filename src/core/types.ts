// The normalized request and the decision: the only shapes the core knows.
// Adapters (gRPC, HTTP forward-auth, CLI) translate their wire formats to and from these.

export type CredentialKind = 'api-key' | 'jwt' | 'oauth2';
export const CREDENTIAL_KINDS: readonly CredentialKind[] = ['api-key', 'jwt', 'oauth2'];

export interface AuthzRequest {
  method: string;
  host: string;
  /** `:path` as received: path plus query, not decoded. */
  rawPath: string;
  /** Header names lowercased; repeated headers joined with "," as Envoy does. */
  headers: Record<string, string>;
  sourceIp: string;
  /** Envoy per-route context_extensions: trusted, from Envoy's own config. */
  contextExtensions: Record<string, string>;
  /** Envoy's `x-request-id`, for logs only. */
  requestId?: string;
}

/** Who the caller is, once a credential has been verified. Built only by newIdentity (identity.ts). */
export interface Identity {
  readonly method: CredentialKind;
  readonly subject?: string;
  readonly clientId?: string;
  readonly scopes: readonly string[];
  readonly keyId?: string;
  readonly issuer?: string;
  /** Seconds since epoch; bounds how long anything derived may be cached. */
  readonly expiresAt?: number;
}

export type DenyError =
  | 'missing_credentials'
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'forbidden'
  | 'rate_limited'
  | 'temporarily_unavailable';

export interface HeaderSet {
  name: string;
  value: string;
}

// Allow and Deny carry the same fields at run time (the other kind's as undefined), built by
// allow() in decide.ts and deny() in decision-table.ts in the same order: every function that reads
// a Decision (metrics, logs, the encoder) then sees one object shape. With two, `node --trace-deopt`
// showed the first denies after a run of allows deoptimizing check, metadataEntries and
// countDecision ("wrong map"); see docs/performance.md, "The full mix".
export interface Allow {
  allowed: true;
  status: 200;
  /** Headers to set on the upstream request (overwrite). Shared between Checks: never modified. */
  set: readonly HeaderSet[];
  /** Headers to remove from the upstream request; never one that is also in `set`. */
  remove: string[];
  /** Query parameters to remove (an API key sent in the URL). */
  removeQuery: string[];
  /** Headers for the client's response (rate-limit quota). */
  responseHeaders: HeaderSet[];
  reason: string;
  route?: string;
  identity?: Identity;
  credential: undefined;
  error: undefined;
  description: undefined;
}

export interface Deny {
  allowed: false;
  status: 400 | 401 | 403 | 429 | 503;
  error: DenyError;
  /** Short, leaks nothing: safe for the client. */
  description: string;
  /** Machine-readable reason for logs and metrics (e.g. `api_key_revoked`). */
  reason: string;
  /** Headers for the client's response (WWW-Authenticate, Retry-After, RateLimit). */
  responseHeaders: HeaderSet[];
  route?: string;
  identity?: Identity;
  /** Credential kind that was presented, if any (for metrics). */
  credential?: CredentialKind;
  set: undefined;
  remove: undefined;
  removeQuery: undefined;
}

export type Decision = Allow | Deny;
