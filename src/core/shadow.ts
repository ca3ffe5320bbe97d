// `routes[].mode: shadow`: a new rule is rolled out by letting it decide without enforcing. The
// decision is made in full (credential, scopes, conditions, rate limit) and recorded with the allow;
// a would-be deny is allowed with no identity header at all, so nothing from a credential that did
// not pass (or an identity that failed a condition) reaches the upstream. The client's identity
// headers and the credentials are removed as on every allow.
import { allow } from './decision.ts';
import type { CompiledPolicy, RouteRule } from './policy.ts';
import { noPassthrough, withMcp } from './protected-resource.ts';
import type { AuthzRequest, Decision } from './types.ts';

export function shadowed(
  d: Decision,
  req: AuthzRequest,
  policy: CompiledPolicy,
  route: RouteRule,
  removeQuery: readonly string[],
): Decision {
  if (d.allowed) {
    return withMcp(
      allow(d.reason, d.route, d.identity, d.set, d.remove, d.removeQuery, d.responseHeaders, {
        status: d.status,
        reason: d.reason,
      }),
      d.mcp,
    );
  }
  // Headers that need no identity (`route`); their values come from the config, so always safe.
  let set: readonly { name: string; value: string }[];
  try {
    set = policy.headers.identityHeaders(undefined, route.name);
  } catch {
    // Nothing from an identity is set either way; an unsendable route name sets nothing.
    set = [];
  }
  const credentialHeaders = policy.credentialHeaders.filter((h) => req.headers[h] !== undefined);
  let remove = policy.headers.removals(req.headers, set, credentialHeaders);
  // An MCP route never passes the client's token on (no passthrough), shadowed or not.
  if (policy.resources?.forRoute(route.name)?.noPassthrough) remove = noPassthrough(remove, credentialHeaders, set);
  // A renewed DPoP nonce still reaches the client: its next proof needs it either way.
  const nonce = d.responseHeaders.filter((h) => h.name === 'dpop-nonce');
  return withMcp(
    allow('shadow', route.name, undefined, set, remove, removeQuery, nonce, {
      status: d.status,
      reason: d.reason,
      condition: d.condition,
      identity: d.identity,
    }),
    d.mcp,
  );
}
