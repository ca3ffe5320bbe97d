// What decide() adds on the routes of a protected resource (RFC 9728), an MCP endpoint or a
// step-up requirement (RFC 9470), once the credential is verified: the token's audience must be
// the resource (RFC 8707), its authentication strong and recent enough, and an MCP tools/call needs
// its tool's scopes on top of the route's. The rules are interfaces src/resources/ implements (the
// body parser, the tool globs, the challenge syntax live there); here is only the order they run
// in and what a deny of such a route looks like.
import type { DenyReason } from './reasons.ts';
import type { AuthzRequest, Claims, Decision, HeaderSet, Identity, McpCall } from './types.ts';

/** The MCP message of a POST, or why it cannot be read. */
export type McpOutcome =
  | { readonly ok: false; readonly reason: DenyReason; readonly call?: McpCall }
  /** `scopes`: what the message needs on top of the route's scopes (a tool's). */
  | { readonly ok: true; readonly call: McpCall; readonly scopes: readonly string[] };

/** One route's rules (compiled from protected_resources, routes[].mcp, routes[].step_up). */
export interface RouteGuard {
  /** RFC 8707: the resource the token's `aud` must name; undefined when the route belongs to none. */
  readonly resource?: string;
  /** The client's credential never reaches the upstream, whatever forward_credentials says (MCP). */
  readonly noPassthrough: boolean;
  /** Whether an `aud` value (claim or introspection member, as the token carries it) names `resource`. */
  audienceMatches(aud: unknown): boolean;
  /** RFC 9470: undefined when the authentication behind the token meets the route's step_up. */
  stepUp?(claims: Claims | undefined, nowMs: number): DenyReason | undefined;
  /** The JSON-RPC message of an MCP route's request; undefined for a request that carries none (not a POST). */
  mcp?(req: AuthzRequest): McpOutcome | undefined;
  /**
   * The WWW-Authenticate value for a 401 or 403 of this route: `header` (the one deny() built, if
   * any) with resource_metadata, and acr_values / max_age on insufficient_user_authentication.
   */
  challenge(header: string | undefined, error: string, realm: string): string | undefined;
}

export interface ResourceGuards {
  forRoute(route: string): RouteGuard | undefined;
}

export type GuardResult =
  | { readonly ok: true; readonly scopes: readonly string[]; readonly mcp?: McpCall }
  /** `identified`: the token is valid, the operation is refused (the deny names who was refused). */
  | { readonly ok: false; readonly reason: DenyReason; readonly mcp?: McpCall; readonly identified: boolean };

const NO_SCOPES: readonly string[] = Object.freeze([]);
const PASS: GuardResult = Object.freeze({ ok: true, scopes: NO_SCOPES });

/**
 * Audience first (a token for another resource is simply not valid here), then step-up (a valid
 * token whose user must authenticate again), then the MCP message (what the operation needs).
 */
export function guardRequest(g: RouteGuard, req: AuthzRequest, identity: Identity, nowMs: number): GuardResult {
  if (g.resource !== undefined && !g.audienceMatches(identity.claims?.aud))
    return { ok: false, reason: 'resource_audience_mismatch', identified: false };
  if (g.stepUp) {
    const reason = g.stepUp(identity.claims, nowMs);
    if (reason !== undefined) return { ok: false, reason, identified: true };
  }
  const m = g.mcp?.(req);
  if (m === undefined) return PASS;
  if (!m.ok) return { ok: false, reason: m.reason, mcp: m.call, identified: true };
  return { ok: true, scopes: m.scopes, mcp: m.call };
}

/** The decision with the MCP message it was about (logs, metrics, dynamic metadata). */
export function withMcp<D extends Decision>(d: D, mcp: McpCall | undefined): D {
  return mcp === undefined ? d : { ...d, mcp };
}

/**
 * RFC 9728 §5.1, RFC 9470 §3: a 401 or 403 of a guarded route carries the route's challenge
 * parameters. Other statuses (400, 429, 503) and unguarded routes are left as they are.
 */
export function guardedDeny(d: Decision, guards: ResourceGuards, realm: string): Decision {
  if (d.allowed || d.route === undefined || (d.status !== 401 && d.status !== 403)) return d;
  const g = guards.forRoute(d.route);
  if (!g) return d;
  const i = d.responseHeaders.findIndex((h) => h.name === 'www-authenticate');
  const value = g.challenge(i < 0 ? undefined : d.responseHeaders[i].value, d.error, realm);
  if (value === undefined) return d;
  const responseHeaders: HeaderSet[] = d.responseHeaders.slice();
  if (i < 0) responseHeaders.unshift({ name: 'www-authenticate', value });
  else responseHeaders[i] = { name: 'www-authenticate', value };
  return { ...d, responseHeaders };
}

/** `remove` plus the credential headers the request carries, unless set (a phantom token may be). */
export function noPassthrough(
  remove: readonly string[],
  credentialHeaders: readonly string[],
  set: readonly HeaderSet[],
): string[] {
  const out = remove.slice();
  for (const h of credentialHeaders) if (!out.includes(h) && !set.some((s) => s.name === h)) out.push(h);
  return out;
}
