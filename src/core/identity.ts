// The one constructor of Identity. API keys, JWTs and introspection answers all build theirs here,
// so every Identity has the same fields in the same order (absent ones undefined), frozen, with a
// frozen copy of its scopes: cached identities are shared by every request that presents the same
// credential, and nothing downstream may change them. Code that reads identities (identity
// headers, metadata, logs, rate-limit keys) then sees one object shape whatever the credential
// (a frozen object has a shape of its own, so all of them are frozen, not some).
import type { CredentialKind, Identity } from './types.ts';

export interface IdentityFields {
  subject?: string;
  clientId?: string;
  scopes: readonly string[];
  keyId?: string;
  issuer?: string;
  expiresAt?: number;
}

export function newIdentity(method: CredentialKind, f: IdentityFields): Identity {
  return Object.freeze({
    method,
    subject: f.subject,
    clientId: f.clientId,
    scopes: Object.freeze([...f.scopes]),
    keyId: f.keyId,
    issuer: f.issuer,
    expiresAt: f.expiresAt,
  });
}
