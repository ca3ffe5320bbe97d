// What one configured issuer accepts, compiled once from credentials.jwt[i], and the checks of a
// token's header and claims against it. Pure: the clock is passed in.
//
// Every check here closes a library default that would be unsafe for access tokens: `exp` is
// required and must be a finite number (JSON's 1e999 parses to Infinity), its distance from both
// `iat` and now is bounded by max_lifetime_seconds, `nbf`/`iat` honour the skew, `typ` comes from an
// allow-list, ID tokens are refused, RFC 9068's required claims are there (sub, client_id, iat, jti,
// relaxable per issuer), and the scope claim has exactly the configured type.
import { InvalidCredentialError } from '../../core/errors.ts';
import type { InvalidTokenReason } from '../../core/reasons.ts';
import type { Identity } from '../../core/types.ts';
import { checkClaims as boundClaims } from '../../policy/claims.ts';
import { newIdentity } from '../../core/identity.ts';
import type { JwtIssuerConfig } from '../../policy/schema.ts';
import { normalizeTyp, type TokenParts } from './token-parts.ts';

export interface IssuerPolicy {
  issuer: string;
  /** Index in credentials.jwt, for operator messages (`credentials.jwt[0]`). */
  index: number;
  audiences: ReadonlySet<string>;
  algorithms: ReadonlySet<string>;
  typs: ReadonlySet<string>;
  allowMissingTyp: boolean;
  skewSeconds: number;
  maxLifetimeSeconds: number;
  scopeClaim: 'scope' | 'scp';
  subjectClaim: string;
  clientIdClaims: readonly string[];
  /** Claims that must be present (credentials.jwt[].required_claims). */
  requiredClaims: readonly string[];
}

export function compileIssuerPolicy(cfg: JwtIssuerConfig, index: number): IssuerPolicy {
  return {
    issuer: cfg.issuer,
    index,
    audiences: new Set(cfg.audiences),
    algorithms: new Set(cfg.algorithms),
    typs: new Set(cfg.token_types.map(normalizeTyp)),
    allowMissingTyp: cfg.allow_missing_typ,
    skewSeconds: cfg.clock_skew_seconds,
    maxLifetimeSeconds: cfg.max_lifetime_seconds,
    scopeClaim: cfg.scope_claim,
    subjectClaim: cfg.subject_claim,
    clientIdClaims: cfg.client_id_claims,
    requiredClaims: cfg.required_claims,
  };
}

function invalid(reason: InvalidTokenReason): never {
  throw new InvalidCredentialError(reason);
}

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Claims that only ID tokens carry (OIDC Core §2, §3.1.3.6): an ID token is not an access token. */
const ID_TOKEN_CLAIMS = ['nonce', 'at_hash', 'c_hash', 's_hash'];

const TIME_INVALID = { exp: 'jwt_exp_invalid', nbf: 'jwt_nbf_invalid', iat: 'jwt_iat_invalid' } as const;

function finiteTime(payload: Record<string, unknown>, claim: keyof typeof TIME_INVALID): number | undefined {
  const v = payload[claim];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(TIME_INVALID[claim]);
  return v;
}

function optionalString(payload: Record<string, unknown>, claim: string): string | undefined {
  const v = payload[claim];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) invalid('jwt_claim_type_invalid');
  return v;
}

/**
 * RFC 9068 §2.2's claims have reasons of their own; any other required claim shares one (reasons are
 * metric labels).
 */
const STANDARD_REQUIRED: ReadonlyMap<string, InvalidTokenReason> = new Map([
  ['sub', 'jwt_sub_missing'],
  ['client_id', 'jwt_client_id_missing'],
  ['iat', 'jwt_iat_missing'],
  ['jti', 'jwt_jti_missing'],
]);

/**
 * The required claims are present (null counts as absent), and RFC 9068's string claims, whenever
 * present, are non-empty strings (iat is checked as a time claim).
 */
function checkRequired(policy: IssuerPolicy, payload: Record<string, unknown>): void {
  for (const c of policy.requiredClaims) {
    if (payload[c] === undefined || payload[c] === null)
      invalid(STANDARD_REQUIRED.get(c) ?? 'jwt_required_claim_missing');
  }
  for (const c of ['sub', 'client_id', 'jti']) optionalString(payload, c);
}

function scopesOf(payload: Record<string, unknown>, claim: 'scope' | 'scp'): string[] {
  const v = payload[claim];
  if (v === undefined) return [];
  let list: unknown[];
  if (claim === 'scope') {
    if (typeof v !== 'string') invalid('jwt_scope_claim_invalid');
    list = v.split(' ').filter((s) => s !== '');
  } else {
    if (!Array.isArray(v)) invalid('jwt_scope_claim_invalid');
    list = v;
  }
  for (const s of list) if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) invalid('jwt_scope_claim_invalid');
  return list as string[];
}

/** Header checks that depend on the issuer: algorithm allow-list and `typ`. */
export function checkHeader(policy: IssuerPolicy, parts: TokenParts): void {
  if (!policy.algorithms.has(parts.alg)) invalid('jwt_alg_not_allowed');
  const typ = parts.header.typ as string | undefined;
  if (typ === undefined) {
    if (!policy.allowMissingTyp) invalid('jwt_typ_missing');
  } else {
    const normalized = normalizeTyp(typ);
    if (normalized === '' || !policy.typs.has(normalized)) invalid('jwt_typ_not_allowed');
  }
}

/**
 * Checks the claims (unverified at this point: rejecting early is always safe, accepting waits for
 * the signature) and maps them to an Identity. `nowMs` is the caller's clock.
 */
export function checkClaims(policy: IssuerPolicy, payload: Record<string, unknown>, nowMs: number): Identity {
  const now = nowMs / 1000;
  const skew = policy.skewSeconds;
  if (payload.iss !== policy.issuer) invalid('jwt_issuer_mismatch');

  const aud = payload.aud;
  if (typeof aud === 'string') {
    if (!policy.audiences.has(aud)) invalid('jwt_audience_mismatch');
  } else if (Array.isArray(aud)) {
    let ok = false;
    for (const a of aud) {
      if (typeof a !== 'string') invalid('jwt_audience_invalid');
      if (policy.audiences.has(a)) ok = true;
    }
    if (!ok) invalid('jwt_audience_mismatch');
  } else {
    invalid(aud === undefined ? 'jwt_audience_missing' : 'jwt_audience_invalid');
  }

  if (payload.exp === undefined) invalid('jwt_exp_missing');
  const exp = finiteTime(payload, 'exp')!;
  const nbf = finiteTime(payload, 'nbf');
  const iat = finiteTime(payload, 'iat');
  if (exp + skew <= now) invalid('jwt_expired');
  if (nbf !== undefined && nbf - skew > now) invalid('jwt_not_yet_valid');
  if (iat !== undefined && iat - skew > now) invalid('jwt_issued_in_future');
  // Bounded from both ends: a token minted with a far-future exp (with or without a backdated
  // or missing iat) is refused.
  if (exp - now > policy.maxLifetimeSeconds + skew) invalid('jwt_lifetime_too_long');
  if (iat !== undefined && exp - iat > policy.maxLifetimeSeconds) invalid('jwt_lifetime_too_long');

  for (const c of ID_TOKEN_CLAIMS) if (payload[c] !== undefined) invalid('jwt_id_token');
  checkRequired(policy, payload);

  const subject = optionalString(payload, policy.subjectClaim);
  let clientId: string | undefined;
  for (const c of policy.clientIdClaims) {
    clientId = optionalString(payload, c);
    if (clientId !== undefined) break;
  }
  const scopes = scopesOf(payload, policy.scopeClaim);
  // The payload becomes identity.claims: bounded once, here, before the identity is cached. Its
  // text is already bounded by max_credential_bytes; the walk bounds its depth.
  const bounded = boundClaims(payload);
  if (!bounded.ok) invalid(bounded.reason);
  return newIdentity('jwt', {
    subject,
    clientId,
    scopes,
    issuer: policy.issuer,
    expiresAt: exp,
    claims: payload,
  });
}
