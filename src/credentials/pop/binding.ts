// Which proof of possession a request must bring: from the token's `cnf` (JWT claim, RFC 7800; or
// introspection member, RFC 9449, §6.2 and RFC 8705, §3.2), the scheme it came with, and the
// route's `sender_constraint`. Pure: the checks themselves are dpop.ts and certificate.ts.
import type { PopReason } from './reasons.ts';

/** `routes[].sender_constraint`. */
export type SenderConstraint = 'none' | 'dpop' | 'mtls' | 'any';

/** What a token is bound to. Both members may be present (bound to a DPoP key and a certificate). */
export interface Confirmation {
  /** `cnf.jkt`: base64url SHA-256 JWK thumbprint (RFC 9449, §6). */
  jkt?: string;
  /** `cnf["x5t#S256"]`: base64url SHA-256 of the certificate's DER (RFC 8705, §3.1). */
  x5tS256?: string;
}

export type ConfirmationResult =
  | { kind: 'unbound' }
  | { kind: 'bound'; cnf: Confirmation }
  | { kind: 'invalid'; reason: 'cnf_invalid' | 'cnf_unsupported' };

// A SHA-256 digest in base64url without padding.
const SHA256_B64URL = /^[A-Za-z0-9_-]{43}$/;

/**
 * Reads a token's `cnf`. Absent: unbound. A member this server cannot check (`jwk`, `kid`, `jku`,
 * `jwe`, `x5t`, anything else) makes the token unusable rather than unbound: it is bound to
 * something we cannot verify.
 */
export function readConfirmation(cnf: unknown): ConfirmationResult {
  if (cnf === undefined) return { kind: 'unbound' };
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) return { kind: 'invalid', reason: 'cnf_invalid' };
  const out: Confirmation = {};
  let members = 0;
  for (const [name, value] of Object.entries(cnf)) {
    members++;
    if (name === 'jkt') {
      if (typeof value !== 'string' || !SHA256_B64URL.test(value)) return { kind: 'invalid', reason: 'cnf_invalid' };
      out.jkt = value;
    } else if (name === 'x5t#S256') {
      if (typeof value !== 'string' || !SHA256_B64URL.test(value)) return { kind: 'invalid', reason: 'cnf_invalid' };
      out.x5tS256 = value;
    } else {
      return { kind: 'invalid', reason: 'cnf_unsupported' };
    }
  }
  if (members === 0) return { kind: 'invalid', reason: 'cnf_invalid' };
  return { kind: 'bound', cnf: out };
}

export interface BindingInput {
  /**
   * The scheme the token came with: `Authorization: Bearer` (or another Bearer-style source) or
   * `Authorization: DPoP`.
   */
  scheme: 'bearer' | 'dpop';
  confirmation: ConfirmationResult;
  /** The route's `sender_constraint` (default none). */
  required: SenderConstraint;
}

export type BindingPlan =
  | { action: 'deny'; reason: PopReason }
  /** Run these checks; every one must pass. */
  | {
      action: 'check';
      dpop?: { jkt: string };
      certificate?: { x5tS256: string };
      bound: 'dpop' | 'mtls' | 'dpop+mtls' | 'none';
    };

/**
 * What to check, or why to refuse before checking anything:
 *
 * - `cnf` present but unreadable or unsupported: refused.
 * - `Authorization: DPoP`: the token must carry `cnf.jkt`; the proof is checked against it.
 * - `Authorization: Bearer` with `cnf.jkt`: refused, the downgrade RFC 9449, §7.2 forbids.
 * - `cnf["x5t#S256"]`: the client certificate must match, with either scheme.
 * - the route's sender_constraint: `dpop` needs a DPoP-bound token sent as DPoP; `mtls` a
 *   certificate-bound one; `any` one of them; `none` accepts unbound tokens (bound ones are still
 *   checked).
 */
export function planBinding(input: BindingInput): BindingPlan {
  const { confirmation: c, scheme, required } = input;
  if (c.kind === 'invalid') return { action: 'deny', reason: c.reason };
  const cnf = c.kind === 'bound' ? c.cnf : {};
  if (scheme === 'dpop' && cnf.jkt === undefined) return { action: 'deny', reason: 'dpop_token_not_bound' };
  if (scheme === 'bearer' && cnf.jkt !== undefined) return { action: 'deny', reason: 'dpop_bound_token_as_bearer' };

  const dpop = scheme === 'dpop' && cnf.jkt !== undefined;
  const mtls = cnf.x5tS256 !== undefined;
  if (required === 'dpop' && !dpop) return { action: 'deny', reason: 'dpop_required' };
  if (required === 'mtls' && !mtls) return { action: 'deny', reason: 'mtls_binding_required' };
  if (required === 'any' && !dpop && !mtls) return { action: 'deny', reason: 'sender_constraint_required' };
  return {
    action: 'check',
    ...(dpop ? { dpop: { jkt: cnf.jkt! } } : {}),
    ...(mtls ? { certificate: { x5tS256: cnf.x5tS256! } } : {}),
    bound: dpop && mtls ? 'dpop+mtls' : dpop ? 'dpop' : mtls ? 'mtls' : 'none',
  };
}
