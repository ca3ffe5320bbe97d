// The one constructor of Identity. API keys, JWTs and introspection answers all build theirs here,
// so every Identity has the same fields in the same order (absent ones undefined), frozen, with a
// frozen copy of its scopes: cached identities are shared by every request that presents the same
// credential, and nothing downstream may change them. Code that reads identities (identity
// headers, metadata, logs, rate-limit keys) then sees one object shape whatever the credential
// (a frozen object has a shape of its own, so all of them are frozen, not some).
import { InvalidCredentialError } from './errors.ts';
import type { Binding, Claims, CredentialKind, Identity } from './types.ts';

/** A lone surrogate (with the u flag a surrogate pair is one code point and does not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const notUnicode = (v: string | undefined) => v !== undefined && LONE_SURROGATE.test(v);

export interface IdentityFields {
  subject?: string;
  clientId?: string;
  scopes: readonly string[];
  keyId?: string;
  issuer?: string;
  expiresAt?: number;
  /** Verified attributes (bounded by the verifier); frozen here, with everything inside them. */
  claims?: Readonly<Record<string, unknown>>;
  bound?: Binding;
}

/**
 * Throws InvalidCredentialError (`identity_value_invalid_unicode`) for a value that is not
 * well-formed Unicode (a lone surrogate, e.g. from a JSON `"\ud800"` escape): it has no UTF-8
 * form, and identity values end up in headers, Envoy's dynamic metadata and logs, all UTF-8. A
 * CheckResponse with such a string is refused by Envoy as a whole. Checked once per identity.
 */
export function newIdentity(method: CredentialKind, f: IdentityFields): Identity {
  if (
    notUnicode(f.subject) ||
    notUnicode(f.clientId) ||
    notUnicode(f.keyId) ||
    notUnicode(f.issuer) ||
    f.scopes.some((s) => LONE_SURROGATE.test(s))
  ) {
    throw new InvalidCredentialError('identity_value_invalid_unicode');
  }
  return Object.freeze({
    method,
    subject: f.subject,
    clientId: f.clientId,
    scopes: Object.freeze([...f.scopes]),
    keyId: f.keyId,
    issuer: f.issuer,
    expiresAt: f.expiresAt,
    claims: f.claims === undefined ? undefined : deepFreeze(f.claims),
    bound: f.bound,
  });
}

/**
 * The identity of a credential whose proof of possession was checked on this request: a copy with
 * `bound` set (the verified identity may be cached and shared; it stays as it was).
 */
export function withBinding(identity: Identity, bound: Binding): Identity {
  if (identity.bound === bound) return identity;
  // One bound copy per cached identity, so that what is kept per identity downstream (identity
  // headers, encoded allows) is reused from Check to Check. A function of the key alone.
  const copies = boundCopies[bound];
  const kept = copies.get(identity);
  if (kept) return kept;
  const copy = boundCopy(identity, bound);
  copies.set(identity, copy);
  return copy;
}

const boundCopies: Record<Binding, WeakMap<Identity, Identity>> = {
  dpop: new WeakMap(),
  mtls: new WeakMap(),
  'dpop+mtls': new WeakMap(),
};

function boundCopy(identity: Identity, bound: Binding): Identity {
  // Same fields in the same order as newIdentity (one object shape); already checked and frozen.
  return Object.freeze({
    method: identity.method,
    subject: identity.subject,
    clientId: identity.clientId,
    scopes: identity.scopes,
    keyId: identity.keyId,
    issuer: identity.issuer,
    expiresAt: identity.expiresAt,
    claims: identity.claims,
    bound,
  });
}

/**
 * Claims are shared by every Check that presents the same credential (cached identities) and read
 * by conditions and header rules: frozen all the way down, once, so nothing can change them. The
 * walk is bounded by the verifier's claim limits (policy/claims.ts), without recursion.
 */
function deepFreeze(claims: Readonly<Record<string, unknown>>): Claims {
  const stack: unknown[] = [claims];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) continue;
    Object.freeze(v);
    for (const k in v) if (Object.hasOwn(v, k)) stack.push((v as Record<string, unknown>)[k]);
  }
  return claims;
}
