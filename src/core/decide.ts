// The decision: a request, the compiled policy and injected verifiers in; a Decision out.
// No sockets, no logging: adapters translate, the runtime logs and counts.
import { conditionsDeny, type ConditionInput } from './conditions.ts';
import { clientCertificateCredential, extractCredential } from './credential.ts';
import { allow, deny, type DenyDetails } from './decision.ts';
import type { DecideDeps } from './deps.ts';
import {
  DependencyUnavailableError,
  ForbiddenCredentialError,
  InvalidCredentialError,
  InvalidRequestError,
  UnsafeHeaderValueError,
} from './errors.ts';
import { normalizeHost } from './host.ts';
import { addressPrefix, clientAddress } from './ip.ts';
import { normalizePath } from './paths.ts';
import type { CompiledPolicy, RateLimitRule, RouteRule } from './policy.ts';
import { guardedDeny, guardRequest, noPassthrough, withMcp, type RouteGuard } from './protected-resource.ts';
import { isMethodOverrideHeader, scanQuery, type QueryScan } from './query.ts';
import type { DenyReason } from './reasons.ts';
import { addDpopChallenge, checkSenderConstraint } from './sender-constraint.ts';
import { shadowed } from './shadow.ts';
import {
  CREDENTIAL_KINDS,
  type Allow,
  type AuthzRequest,
  type CredentialKind,
  type Decision,
  type HeaderSet,
  type Identity,
  type McpCall,
} from './types.ts';

export type { DecideDeps } from './deps.ts';

export function decide(req: AuthzRequest, policy: CompiledPolicy, deps: DecideDeps): Promise<Decision> {
  let decision = decideRequest(req, policy, deps);
  const algs = deps.pop?.dpopAlgorithms;
  if (algs !== undefined) decision = decision.then((d) => addDpopChallenge(d, req, policy, algs));
  // Protected resources' 401 and 403 name their metadata (RFC 9728 §5.1), in every challenge the
  // deny carries (Bearer and DPoP): one place for every deny.
  const guards = policy.resources;
  if (guards) decision = decision.then((d) => guardedDeny(d, guards, policy.realm));
  return decision;
}

// Not async: the checks before the route are synchronous, and the one promise of a Check is
// decideOnRoute's. An async function here would add a promise and its microtask hops to every Check.
function decideRequest(req: AuthzRequest, policy: CompiledPolicy, deps: DecideDeps): Promise<Decision> {
  const realm = policy.realm;

  // Frameworks that obey a method override (header or query) would run another method than the
  // one the route was authorized for.
  for (const h in req.headers) {
    if (isMethodOverrideHeader(h)) return denied('method_override_header', realm);
  }
  if (!req.method || !/^[A-Z]+$/.test(req.method)) return denied('method_invalid', realm);
  const host = normalizeHost(req.host);
  if (host === undefined) return denied('host_invalid', realm);
  const path = normalizePath(req.rawPath);
  if (!path.ok) return denied(path.reason, realm);
  const query = scanQuery(req.rawPath, policy.queryCredentialNames);
  if (query.methodOverride !== undefined) return denied('method_override_query', realm);
  // Envoy removes query parameters split on "&" only: one that only a ";"-splitting upstream
  // would see cannot be kept from it.
  for (const q of query.credentials) {
    if (q.afterSemicolon) return denied('query_credential_unremovable', realm);
  }
  let sourceIp = req.sourceIp;
  if (policy.sourceIp) {
    const ip = clientAddress(req.sourceIp, req.headers[policy.sourceIp.header], policy.sourceIp.trustedHops);
    if (ip === undefined) return denied('source_ip_invalid', realm);
    sourceIp = ip;
  }

  const routeName = req.contextExtensions['portcullis.route'];
  const route =
    routeName !== undefined ? policy.routes.byName(routeName) : policy.routes.match(req.method, host, path.path);
  if (!route) return denied(routeName !== undefined ? 'context_route_unknown' : 'no_route', realm);

  const d = decideOnRoute(req, policy, deps, route, host, path.path, query, sourceIp);
  return route.shadow ? d.then((x) => shadowed(x, req, policy, route, queryCredentialNames(query))) : d;
}

function denied(reason: DenyReason, realm: string): Promise<Decision> {
  return Promise.resolve(deny(reason, realm));
}

/** The decision once the route is chosen: its conditions, credential, scopes, rate limit. */
async function decideOnRoute(
  req: AuthzRequest,
  policy: CompiledPolicy,
  deps: DecideDeps,
  route: RouteRule,
  host: string,
  path: string,
  query: QueryScan,
  sourceIp: string,
): Promise<Decision> {
  const realm = policy.realm;
  const when = route.conditions;
  if (route.public) {
    if (when) {
      const failed = conditionsDeny(when, conditionInput(req, host, path, sourceIp, deps, undefined), realm, {
        route: route.name,
      });
      if (failed) return failed;
    }
    const anonymous = identityHeaders(policy, undefined, route);
    if (anonymous instanceof UnsafeHeaderValueError) return deny(anonymous.reason, realm, { route: route.name });
    const responseHeaders: HeaderSet[] = [];
    if (route.rateLimit && deps.rateLimiter) {
      const limited = await applyRateLimit(
        policy.rateLimits.get(route.rateLimit)!,
        undefined,
        sourceIp,
        deps,
        responseHeaders,
      );
      if (limited) return deny(limited.reason, realm, { route: route.name, ...limited.details });
    }
    return allowed(req, policy, route, undefined, anonymous, queryCredentialNames(query), responseHeaders);
  }

  let cred = extractCredential(req.headers, query, policy.extract);
  // No token or key: on a route that takes one, the client certificate is the credential.
  if (cred.kind === 'none' && route.auth.has('mtls')) cred = clientCertificateCredential(req, policy.extract);
  if (cred.kind === 'none') return deny('missing_credentials', realm, { route: route.name });
  if (cred.kind === 'malformed') return deny(cred.reason, realm, { route: route.name });
  const kind: CredentialKind = cred.kind;
  const base = { route: route.name, credential: kind };
  if (cred.value.length > policy.maxCredentialBytes) return deny('credential_too_large', realm, base);
  if (!route.auth.has(kind)) return deny('credential_kind_not_accepted', realm, base);

  const verifier = deps.verifiers[kind];
  if (!verifier) return deny(CREDENTIAL_KINDS[kind].notConfigured, realm, base);
  let identity: Identity;
  try {
    identity = await verifier.verify(cred.value, req, route, sourceIp);
  } catch (e) {
    return verificationDeny(e, base, realm);
  }

  // The proof of possession the token is bound to, or the route demands (sender-constraint.ts).
  const pop = checkSenderConstraint(req, route, cred, identity, deps.pop);
  let popHeaders: readonly HeaderSet[] | undefined;
  if (pop) {
    try {
      const outcome = await pop;
      if (!outcome.ok) return deny(outcome.reason, realm, { ...base, extraHeaders: outcome.responseHeaders });
      identity = outcome.identity;
      popHeaders = outcome.responseHeaders;
    } catch (e) {
      return verificationDeny(e, base, realm);
    }
  }

  // A renewed DPoP-Nonce goes with every answer from here on, denies included (RFC 9449, §8).
  const after = popHeaders?.length ? { ...base, extraHeaders: popHeaders } : base;

  // Audience, step-up, the MCP message (protected-resource.ts): what this route adds.
  const guard = policy.resources?.forRoute(route.name);
  let mcp: McpCall | undefined;
  let required = requiredScopes(route, req.contextExtensions['portcullis.scopes']);
  if (guard) {
    const g = guardRequest(guard, req, identity, deps.now());
    if (!g.ok) return withMcp(deny(g.reason, realm, g.identified ? { ...after, identity } : after), g.mcp);
    mcp = g.mcp;
    if (g.scopes.length) required = [...new Set([...required, ...g.scopes])];
  }
  for (const s of required) {
    if (!identity.scopes.includes(s)) {
      return withMcp(deny('scope_missing', realm, { ...after, identity, scope: required }), mcp);
    }
  }
  if (when) {
    const failed = conditionsDeny(when, conditionInput(req, host, path, sourceIp, deps, identity), realm, {
      ...after,
      identity,
    });
    if (failed) return withMcp(failed, mcp);
  }

  // Before the rate limiter and the phantom token: an identity whose values may not reach the
  // upstream costs no quota and gets no token signed. Not on the deny: its values stay out of the
  // dynamic metadata too.
  const identitySet = identityHeaders(policy, identity, route);
  if (identitySet instanceof UnsafeHeaderValueError) return withMcp(deny(identitySet.reason, realm, after), mcp);

  const responseHeaders: HeaderSet[] = popHeaders ? [...popHeaders] : [];
  if (route.rateLimit && deps.rateLimiter) {
    const rl = policy.rateLimits.get(route.rateLimit)!;
    const limited = await applyRateLimit(rl, identity, sourceIp, deps, responseHeaders);
    if (limited) return withMcp(deny(limited.reason, realm, { ...base, identity, ...limited.details }), mcp);
  }

  let phantom: string | undefined;
  if (deps.phantomToken) {
    try {
      phantom = await deps.phantomToken(identity, route.name);
    } catch (e) {
      return withMcp(verificationDeny(e, { ...after, identity }, realm), mcp);
    }
  }

  const ok = allowed(req, policy, route, identity, identitySet, queryCredentialNames(query), responseHeaders, phantom);
  return guard ? guardedAllow(ok, guard, policy, req, mcp) : ok;
}

/** MCP: the client's token never reaches the server (no passthrough), whatever forward_credentials says. */
function guardedAllow(
  ok: Allow,
  guard: RouteGuard,
  policy: CompiledPolicy,
  req: AuthzRequest,
  mcp: McpCall | undefined,
): Allow {
  if (!guard.noPassthrough) return withMcp(ok, mcp);
  const present = policy.credentialHeaders.filter((h) => req.headers[h] !== undefined);
  return withMcp({ ...ok, remove: noPassthrough(ok.remove, present, ok.set) }, mcp);
}

/** The identity headers (HeaderPolicy.identityHeaders), or the error when a value may not be sent. */
function identityHeaders(
  policy: CompiledPolicy,
  identity: Identity | undefined,
  route: RouteRule,
): readonly HeaderSet[] | UnsafeHeaderValueError {
  try {
    return policy.headers.identityHeaders(identity, route.name);
  } catch (e) {
    if (e instanceof UnsafeHeaderValueError) return e;
    throw e;
  }
}

function conditionInput(
  req: AuthzRequest,
  host: string,
  path: string,
  sourceIp: string,
  deps: DecideDeps,
  identity: Identity | undefined,
): ConditionInput {
  return {
    identity,
    method: req.method,
    host,
    path,
    rawPath: req.rawPath,
    headers: req.headers,
    sourceIp,
    contextExtensions: req.contextExtensions,
    nowMs: deps.now(),
  };
}

function verificationDeny(e: unknown, base: DenyDetails, realm: string): Decision {
  if (e instanceof InvalidCredentialError || e instanceof InvalidRequestError) return deny(e.reason, realm, base);
  if (e instanceof ForbiddenCredentialError) return deny(e.reason, realm, { ...base, identity: e.identity });
  if (e instanceof DependencyUnavailableError)
    return deny(e.reason, realm, { ...base, retryAfterSeconds: e.retryAfterSeconds });
  // A bug or an unexpected library error: still a deny, and one that says "try again", not "your
  // credential is bad". The runtime logs it at error level.
  return deny('internal_error', realm, { ...base, retryAfterSeconds: 1 });
}

function requiredScopes(route: RouteRule, extra: string | undefined): readonly string[] {
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
function addressKey(rl: RateLimitRule, sourceIp: string): string {
  return addressPrefix(sourceIp, rl.ipv4_prefix_length, rl.ipv6_prefix_length);
}

function rateLimitKey(rl: RateLimitRule, identity: Identity | undefined, sourceIp: string): string {
  if (rl.key === 'source_ip') return addressKey(rl, sourceIp);
  const v =
    identity === undefined
      ? undefined
      : rl.key === 'client_id'
        ? identity.clientId
        : rl.key === 'key_id'
          ? identity.keyId
          : identity.subject;
  // A credential without that field (and a public route, which has no credential) is limited by
  // its source address rather than not at all.
  return v ?? `ip:${addressKey(rl, sourceIp)}`;
}

async function applyRateLimit(
  rl: RateLimitRule,
  identity: Identity | undefined,
  sourceIp: string,
  deps: DecideDeps,
  responseHeaders: HeaderSet[],
): Promise<{ reason: 'rate_limited' | 'rate_limiter_unavailable'; details: DenyDetails } | undefined> {
  const policyHeader = { name: 'ratelimit-policy', value: `"${rl.name}";q=${rl.limit};w=${rl.window_seconds}` };
  try {
    const r = await deps.rateLimiter!.hit(
      { name: rl.name, limit: rl.limit, windowSeconds: rl.window_seconds, maxKeys: rl.max_keys },
      rateLimitKey(rl, identity, sourceIp),
      deps.now(),
    );
    const state = { name: 'ratelimit', value: `"${rl.name}";r=${r.remaining};t=${r.resetSeconds}` };
    if (!r.allowed)
      return {
        reason: 'rate_limited',
        details: { retryAfterSeconds: r.resetSeconds, extraHeaders: [policyHeader, state] },
      };
    responseHeaders.push(policyHeader, state);
    return undefined;
  } catch (e) {
    if (rl.on_redis_error === 'allow') {
      deps.onRateLimiterError?.(rl.name, e as Error);
      return undefined;
    }
    const retry = e instanceof DependencyUnavailableError ? e.retryAfterSeconds : 1;
    return { reason: 'rate_limiter_unavailable', details: { retryAfterSeconds: retry } };
  }
}

function allowed(
  req: AuthzRequest,
  policy: CompiledPolicy,
  route: RouteRule,
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
  return allow(identity ? 'allowed' : 'public_route', route.name, identity, set, remove, removeQuery, responseHeaders);
}
