// What a route's conditions read, built once per Check and shared by all of them.
import { ConditionIdentity, ConditionRequest } from './environment.ts';

/** The request as the decision path has it, normalized. */
export interface ConditionRequestInput {
  method: string;
  /** Canonical host: lower case, no port, no trailing dot. */
  host: string;
  /** Normalized path, without the query. */
  path: string;
  /** The raw query (after `?`, `''` for none), parsed only if a condition reads it; or a ready map. */
  query: string | Readonly<Record<string, string>>;
  /** Lower-case names; repeated headers joined with "," (as Envoy sends them). */
  headers: Readonly<Record<string, string>>;
  /** The route's path template values (path-template.ts); empty without a template. */
  params?: Readonly<Record<string, string>>;
  sourceIp: string;
  contextExtensions: Readonly<Record<string, string>>;
}

/** The verified caller: core's Identity has this shape, plus `claims` (claims.ts bounds them). */
export interface ConditionIdentityInput {
  method: string;
  subject?: string;
  clientId?: string;
  scopes: readonly string[];
  issuer?: string;
  keyId?: string;
  claims?: Readonly<Record<string, unknown>>;
  bound?: string;
}

export interface ConditionActivation {
  request: ConditionRequest;
  identity: ConditionIdentity;
  now: Date;
}

const NO_PARAMS = Object.freeze(Object.create(null) as Record<string, string>);
const NO_CLAIMS = Object.freeze(Object.create(null) as Record<string, unknown>);
const ANONYMOUS = new ConditionIdentity(undefined, undefined, undefined, undefined, undefined, undefined, undefined);

/**
 * The activation for one Check. `identity` undefined (a public route, or before any credential
 * passed): every `identity` field is absent, so `has(identity.subject)` is false and reading one is
 * an error. With an identity, `scopes` and `claims` are always present (possibly empty).
 */
export function buildActivation(
  request: ConditionRequestInput,
  identity: ConditionIdentityInput | undefined,
  now: Date,
): ConditionActivation {
  const q = request.query;
  return {
    request: new ConditionRequest(
      request.method,
      request.host,
      request.path,
      typeof q === 'string' ? () => parseQueryMap(q) : () => q,
      request.headers,
      request.params ?? NO_PARAMS,
      request.sourceIp,
      request.contextExtensions,
    ),
    identity: identity
      ? new ConditionIdentity(
          identity.method,
          identity.subject,
          identity.clientId,
          identity.scopes,
          identity.issuer,
          identity.keyId,
          identity.claims ?? NO_CLAIMS,
          identity.bound,
        )
      : ANONYMOUS,
    now,
  };
}

/** The query string could not be read one way only: conditions reading `request.query` fail (deny). */
export class QueryDecodeError extends Error {}

/**
 * `request.query`: names and values percent-decoded with `+` as a space (how form decoders read
 * them), split on `&` and `;` (some frameworks split on both; reading both ways means a
 * `;`-smuggled parameter is seen). A name given more than once maps to its values joined with ","
 * in order, so `request.query.tenant == 'a'` does not hold for `?tenant=a&tenant=b`, whichever one
 * the upstream reads. Throws QueryDecodeError for an escape that does not decode.
 */
export function parseQueryMap(query: string): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  let start = 0;
  for (let i = 0; i <= query.length; i++) {
    const c = i < query.length ? query.charCodeAt(i) : 38; /* & */
    if (c !== 38 && c !== 59 /* ; */) continue;
    if (i > start) {
      const eq = query.indexOf('=', start);
      const nameEnd = eq === -1 || eq > i ? i : eq;
      const name = decodeFormPart(query.slice(start, nameEnd));
      const value = nameEnd === i ? '' : decodeFormPart(query.slice(nameEnd + 1, i));
      if (name !== '') out[name] = name in out ? `${out[name]},${value}` : value;
    }
    start = i + 1;
  }
  return out;
}

function decodeFormPart(s: string): string {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    throw new QueryDecodeError('the query string has an escape that does not decode');
  }
}
