// The decision: a request, the compiled policy and injected verifiers in; a Decision out.
// No sockets, no logging: adapters translate, the runtime logs and counts.
import { extractCredential } from '../credentials/extract.ts';
import { verifyApiKey } from '../credentials/apikey.ts';
import type { Policy } from '../policy/compile.ts';
import { UnsafeHeaderValueError } from '../policy/headers.ts';
import type { Route } from '../policy/routes.ts';
import type { RateLimitConfig } from '../policy/schema.ts';
import type { KeyStore } from '../stores/keystore.ts';
import type { RateLimiter } from '../stores/ratelimit.ts';
import { deny, type DenyDetails } from './decision-table.ts';
import { DependencyUnavailableError, ForbiddenCredentialError, InvalidCredentialError } from './errors.ts';
import { normalizeHost } from './host.ts';
import { addressPrefix, clientAddress } from './ip.ts';
import { normalizePath } from './paths.ts';
import { isMethodOverrideHeader, scanQuery, type QueryScan } from './query.ts';
import type { Allow, AuthzRequest, CredentialKind, Decision, HeaderSet, Identity } from './types.ts';

export interface DecideDeps {
  /** Milliseconds since epoch. */
  now(): number;
  keyStore?: KeyStore;
  /** JWT access tokens (credentials.jwt). Throws InvalidCredentialError / DependencyUnavailableError. */
  verifyJwt?(token: string): Promise<Identity>;
  /** Opaque tokens via RFC 7662 introspection (credentials.introspection). */
  introspect?(token: string): Promise<Identity>;
  rateLimiter?: RateLimiter;
  /** Phantom token: a JWT minted for the upstream in place of the client's credential. */
  phantomToken?(identity: Identity, route: string): Promise<string | undefined>;
  /** Called when a rate limiter failure was let through (on_redis_error: allow). */
  onRateLimiterError?(policy: string, err: Error): void;
}

export async function decide(req: AuthzRequest, policy: Policy, deps: DecideDeps): Promise<Decision> {
  const realm = policy.realm;

  // Frameworks that obey a method override (header or query) would run another method than the
  // one the route was authorized for.
  for (const h in req.headers) {
    if (isMethodOverrideHeader(h)) return deny('invalid_request', realm, { reason: 'method_override_header' });
  }
  if (!req.method || !/^[A-Z]+$/.test(req.method)) return deny('invalid_request', realm, { reason: 'method_invalid' });
  const host = normalizeHost(req.host);
  if (host === undefined) return deny('invalid_request', realm, { reason: 'host_invalid' });
  const path = normalizePath(req.rawPath);
  if (!path.ok) return deny('invalid_request', realm, { reason: path.reason });
  const query = scanQuery(req.rawPath, policy.queryCredentialNames);
  if (query.methodOverride !== undefined) return deny('invalid_request', realm, { reason: 'method_override_query' });
  // Envoy removes query parameters split on "&" only: one that only a ";"-splitting upstream
  // would see cannot be kept from it.
  for (const q of query.credentials) {
    if (q.afterSemicolon) return deny('invalid_request', realm, { reason: 'query_credential_unremovable' });
  }
  let sourceIp = req.sourceIp;
  if (policy.sourceIp) {
    const ip = clientAddress(req.sourceIp, req.headers[policy.sourceIp.header], policy.sourceIp.trustedHops);
    if (ip === undefined) return deny('invalid_request', realm, { reason: 'source_ip_invalid' });
    sourceIp = ip;
  }

  const routeName = req.contextExtensions['portcullis.route'];
  const route = routeName !== undefined ? policy.routes.byName(routeName) : policy.routes.match(req.method, host, path.path);
  if (!route) return deny('forbidden', realm, { reason: routeName !== undefined ? 'context_route_unknown' : 'no_route' });

  if (route.public) {
    const anonymous = identityHeaders(policy, undefined, route);
    if (anonymous instanceof UnsafeHeaderValueError) return deny('invalid_token', realm, { reason: anonymous.reason, route: route.name });
    const responseHeaders: HeaderSet[] = [];
    if (route.rateLimit && deps.rateLimiter) {
      const limited = await applyRateLimit(policy.rateLimits.get(route.rateLimit)!, undefined, sourceIp, deps, responseHeaders);
      if (limited) return deny(limited.error, realm, { route: route.name, ...limited.details });
    }
    return allow(req, policy, route, undefined, anonymous, queryCredentialNames(query), responseHeaders);
  }

  const cred = extractCredential(req.headers, query, policy.extract);
  if (cred.kind === 'none') return deny('missing_credentials', realm, { reason: 'missing_credentials', route: route.name });
  if (cred.kind === 'malformed') return deny('invalid_request', realm, { reason: cred.reason, route: route.name });
  const kind: CredentialKind = cred.kind;
  const base = { route: route.name, credential: kind };
  if (cred.value.length > policy.maxCredentialBytes) return deny('invalid_token', realm, { ...base, reason: 'credential_too_large' });
  if (!route.auth.has(kind)) return deny('invalid_token', realm, { ...base, reason: 'credential_kind_not_accepted' });

  let identity: Identity;
  try {
    identity = await verify(kind, cred.value, route, sourceIp, policy, deps);
  } catch (e) {
    return verificationDeny(e, base, realm);
  }

  const required = requiredScopes(route, req.contextExtensions['portcullis.scopes']);
  for (const s of required) {
    if (!identity.scopes.includes(s)) {
      return deny('insufficient_scope', realm, { ...base, identity, reason: 'scope_missing', scope: required });
    }
  }

  // Before the rate limiter and the phantom token: an identity whose values may not reach the
  // upstream costs no quota and gets no token signed. Not on the deny: its values stay out of the
  // dynamic metadata too.
  const identitySet = identityHeaders(policy, identity, route);
  if (identitySet instanceof UnsafeHeaderValueError) return deny('invalid_token', realm, { ...base, reason: identitySet.reason });

  const responseHeaders: HeaderSet[] = [];
  if (route.rateLimit && deps.rateLimiter) {
    const rl = policy.rateLimits.get(route.rateLimit)!;
    const limited = await applyRateLimit(rl, identity, sourceIp, deps, responseHeaders);
    if (limited) return deny(limited.error, realm, { ...base, identity, ...limited.details });
  }

  let phantom: string | undefined;
  if (deps.phantomToken) {
    try {
      phantom = await deps.phantomToken(identity, route.name);
    } catch (e) {
      return verificationDeny(e, { ...base, identity }, realm);
    }
  }

  return allow(req, policy, route, identity, identitySet, queryCredentialNames(query), responseHeaders, phantom);
}

/** The identity headers (HeaderPolicy.identityHeaders), or the error when a value may not be sent. */
function identityHeaders(policy: Policy, identity: Identity | undefined, route: Route): readonly HeaderSet[] | UnsafeHeaderValueError {
  try {
    return policy.headers.identityHeaders(identity, route.name);
  } catch (e) {
    if (e instanceof UnsafeHeaderValueError) return e;
    throw e;
  }
}

async function verify(kind: CredentialKind, value: string, route: Route, sourceIp: string, policy: Policy, deps: DecideDeps): Promise<Identity> {
  switch (kind) {
    case 'api-key':
      if (!deps.keyStore || !policy.extract.apiKeyPrefix) throw new InvalidCredentialError('api_key_not_configured');
      return verifyApiKey(value, policy.extract.apiKeyPrefix, deps.keyStore, route.name, sourceIp, deps.now());
    case 'jwt':
      if (!deps.verifyJwt) throw new InvalidCredentialError('jwt_not_configured');
      return deps.verifyJwt(value);
    case 'oauth2':
      if (!deps.introspect) throw new InvalidCredentialError('introspection_not_configured');
      return deps.introspect(value);
  }
}

function verificationDeny(e: unknown, base: Omit<DenyDetails, 'reason'>, realm: string): Decision {
  if (e instanceof InvalidCredentialError) return deny('invalid_token', realm, { ...base, reason: e.reason });
  if (e instanceof ForbiddenCredentialError) {
    return deny('forbidden', realm, { ...base, reason: e.reason, identity: (e as { identity?: Identity }).identity });
  }
  if (e instanceof DependencyUnavailableError) {
    return deny('temporarily_unavailable', realm, { ...base, reason: e.reason, retryAfterSeconds: e.retryAfterSeconds });
  }
  // A bug or an unexpected library error: still a deny, and one that says "try again", not "your
  // credential is bad". The runtime logs it at error level.
  return deny('temporarily_unavailable', realm, {
    ...base,
    reason: 'internal_error',
    retryAfterSeconds: 1,
    description: 'The service is temporarily unavailable',
  });
}

function requiredScopes(route: Route, extra: string | undefined): readonly string[] {
  if (!extra) return route.scopes;
  const more = extra.split(/[\s,]+/).filter(Boolean);
  return [...new Set([...route.scopes, ...more])];
}

/**
 * Credentials in the URL never reach the upstream, whatever `forward_credentials` says (it is
 * about headers): URLs are logged by every hop. Removed by the name the request spells.
 */
function queryCredentialNames(query: QueryScan): string[] {
  if (query.credentials.length === 0) return [];
  return [...new Set(query.credentials.map((q) => q.rawName))];
}

/** The address a client-address rate limit counts: its network at the limit's prefix lengths. */
function addressKey(rl: RateLimitConfig, sourceIp: string): string {
  return addressPrefix(sourceIp, rl.ipv4_prefix_length, rl.ipv6_prefix_length);
}

function rateLimitKey(rl: RateLimitConfig, identity: Identity | undefined, sourceIp: string): string {
  if (rl.key === 'source_ip') return addressKey(rl, sourceIp);
  const v = identity === undefined ? undefined : rl.key === 'client_id' ? identity.clientId : rl.key === 'key_id' ? identity.keyId : identity.subject;
  // A credential without that field (and a public route, which has no credential) is limited by
  // its source address rather than not at all.
  return v ?? `ip:${addressKey(rl, sourceIp)}`;
}

async function applyRateLimit(
  rl: RateLimitConfig,
  identity: Identity | undefined,
  sourceIp: string,
  deps: DecideDeps,
  responseHeaders: HeaderSet[],
): Promise<{ error: 'rate_limited' | 'temporarily_unavailable'; details: Omit<DenyDetails, 'route'> } | undefined> {
  const policyHeader = { name: 'ratelimit-policy', value: `"${rl.name}";q=${rl.limit};w=${rl.window_seconds}` };
  try {
    const r = await deps.rateLimiter!.hit(
      { name: rl.name, limit: rl.limit, windowSeconds: rl.window_seconds, maxKeys: rl.max_keys },
      rateLimitKey(rl, identity, sourceIp),
      deps.now(),
    );
    const state = { name: 'ratelimit', value: `"${rl.name}";r=${r.remaining};t=${r.resetSeconds}` };
    if (!r.allowed) {
      return { error: 'rate_limited', details: { reason: 'rate_limited', retryAfterSeconds: r.resetSeconds, extraHeaders: [policyHeader, state] } };
    }
    responseHeaders.push(policyHeader, state);
    return undefined;
  } catch (e) {
    if (rl.on_redis_error === 'allow') {
      deps.onRateLimiterError?.(rl.name, e as Error);
      return undefined;
    }
    const retry = e instanceof DependencyUnavailableError ? e.retryAfterSeconds : 1;
    return { error: 'temporarily_unavailable', details: { reason: 'rate_limiter_unavailable', retryAfterSeconds: retry } };
  }
}

function allow(
  req: AuthzRequest,
  policy: Policy,
  route: Route,
  identity: Identity | undefined,
  identitySet: readonly HeaderSet[],
  removeQuery: string[],
  responseHeaders: HeaderSet[],
  phantom?: string,
): Allow {
  // The identity's list is shared (HeaderPolicy.identityHeaders): a phantom token goes on a copy.
  const set = phantom ? [...identitySet, { name: 'authorization', value: `Bearer ${phantom}` }] : identitySet;
  // Credential headers go too (unless forwarded), on public routes as well: unverified
  // credentials are not the upstream's business.
  const credentialHeaders = policy.credentialHeaders.filter((h) => req.headers[h] !== undefined);
  const remove = policy.headers.removals(req.headers, set, credentialHeaders);
  // Field order as in deny() (decision-table.ts): one object shape for every Decision.
  return {
    allowed: true,
    status: 200,
    reason: identity ? 'allowed' : 'public_route',
    route: route.name,
    identity,
    credential: undefined,
    responseHeaders,
    set,
    remove,
    removeQuery,
    error: undefined,
    description: undefined,
  };
}
