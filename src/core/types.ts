// The normalized request and the decision: the only shapes the core knows.
// Adapters (gRPC, HTTP forward-auth, CLI) translate their wire formats to and from these.
import type { AllowReason, DenyError, DenyReason, DenyStatus } from './reasons.ts';

/**
 * The credential kinds: the words of a route's `auth` list and of the `x-auth-method` header, each
 * with the config section that turns it on and the reason a request gets when that section is
 * absent. A new kind starts here; the compiler then asks for its verifier in
 * src/credentials/registry.ts (CONTRIBUTING.md, "Adding a credential kind").
 */
export const CREDENTIAL_KINDS = {
  'api-key': { section: ['credentials', 'api_key'], notConfigured: 'api_key_not_configured' },
  jwt: { section: ['credentials', 'jwt'], notConfigured: 'jwt_not_configured' },
  oauth2: { section: ['credentials', 'introspection'], notConfigured: 'introspection_not_configured' },
  mtls: { section: ['credentials', 'mtls'], notConfigured: 'mtls_not_configured' },
} as const satisfies Record<string, { section: readonly string[]; notConfigured: DenyReason }>;

export type CredentialKind = keyof typeof CREDENTIAL_KINDS;
export const CREDENTIAL_KIND_NAMES = Object.keys(CREDENTIAL_KINDS) as [CredentialKind, ...CredentialKind[]];

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
  /**
   * The request body, only when Envoy sends it (`with_request_body`): `body` as Envoy's UTF-8 text,
   * `rawBody` the bytes (`pack_as_bytes`). Envoy adds `x-envoy-auth-partial-body` to the headers.
   */
  body?: string;
  rawBody?: Uint8Array;
  /** `:scheme` (http.scheme), as Envoy sent it: the DPoP `htu` is rebuilt from it. */
  scheme?: string;
  /**
   * The client certificate Envoy verified on this connection (`source.certificate`, URL-encoded PEM;
   * only with the ext_authz filter's include_peer_certificate). Absent when none.
   */
  peerCertificate?: string;
  /** `source.principal`: the URI SAN (or subject) of that certificate. Absent when none. */
  peerPrincipal?: string;
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
  /**
   * The verified attributes behind the identity, deep-frozen: a JWT's payload, an introspection
   * answer's members (both bounded in size and depth before they get here). Never logged.
   */
  readonly claims?: Claims;
  /**
   * What the credential was proven to be held with (docs/proof-of-possession.md): a DPoP key, the
   * client certificate, or both. Undefined for a bearer credential.
   */
  readonly bound?: Binding;
}

/** How a credential was sender-constrained: `identity.bound`. */
export type Binding = 'dpop' | 'mtls' | 'dpop+mtls';

/** A JSON object, deep-frozen (newIdentity). */
export type Claims = Readonly<Record<string, unknown>>;

export interface HeaderSet {
  name: string;
  value: string;
}

/** The MCP message of a POST on an MCP route (routes[].mcp), for logs, metrics and dynamic metadata. */
export interface McpCall {
  /** JSON-RPC `method`, e.g. `tools/call`. */
  readonly method: string;
  /** A tools/call's tool name, bounded and printable for logs: never read by a decision. */
  readonly tool?: string;
  /** The configured pattern that matched the tool (a bounded metric label); undefined when none did. */
  readonly toolPattern?: string;
}

/** The request goes on to the upstream, with these header changes. Built by allow() (decision.ts). */
export interface Allow {
  readonly allowed: true;
  readonly status: 200;
  readonly reason: AllowReason;
  readonly route: string;
  /** Undefined on a public route. */
  readonly identity: Identity | undefined;
  /** Headers to set on the upstream request (overwrite). Shared between Checks: never modified. */
  readonly set: readonly HeaderSet[];
  /** Headers to remove from the upstream request; never one that is also in `set`. */
  readonly remove: readonly string[];
  /** Query parameters to remove (a credential sent in the URL). */
  readonly removeQuery: readonly string[];
  /** Headers for the client's response (rate-limit quota). */
  readonly responseHeaders: readonly HeaderSet[];
  /** On a `mode: shadow` route: the decision that would have been made (recorded, not enforced). */
  readonly shadow?: ShadowOutcome;
  /** On an MCP route: the message allowed. */
  readonly mcp?: McpCall;
}

/** What a shadow route would have answered. `condition` as on a Deny. */
export interface ShadowOutcome {
  readonly status: number;
  readonly reason: AllowReason | DenyReason;
  readonly condition?: string;
  /** Who was decided about, if a credential passed; never sent upstream (logs, `check --explain`). */
  readonly identity?: Identity;
}

/** The request is answered here, never reaching the upstream. Built by deny() (decision.ts). */
export interface Deny {
  readonly allowed: false;
  readonly status: DenyStatus;
  /** The catalog row (reasons.ts): the machine-readable why, for logs, metrics and metadata. */
  readonly reason: DenyReason;
  /** The body's `error`, from the catalog. */
  readonly error: DenyError;
  /** Short, leaks nothing: safe for the client. */
  readonly description: string;
  /** Headers for the client's response (WWW-Authenticate, Retry-After, RateLimit). */
  readonly responseHeaders: readonly HeaderSet[];
  /** Undefined when no route was chosen. */
  readonly route: string | undefined;
  /** Who was refused, when a credential was verified first (a missing scope, a key off its routes). */
  readonly identity: Identity | undefined;
  /** The credential kind presented, if one was found (for metrics). */
  readonly credential: CredentialKind | undefined;
  /** condition_failed / condition_error: which condition (its name or `routes[i].when[j]`); never for the client. */
  readonly condition?: string;
  /** On an MCP route: the message refused, when it could be read. */
  readonly mcp?: McpCall;
}

export type Decision = Allow | Deny;
