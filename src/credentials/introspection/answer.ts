// Reading an RFC 7662 introspection answer strictly. Pure: status, content type and body in;
// an identity, or the reason the token does not pass, out. No I/O, no clock of its own.
//
// Only a 200 JSON object with boolean `active: true` counts. Anything the answer says is then
// checked, not trusted by shape: exp/nbf/iat are finite numbers, iss/aud (when present) match the config,
// scope/client_id/sub are strings, and the token is an access token (a refresh token sent as
// a bearer token is invalid).
import type { InvalidTokenReason, UnavailableReason } from '../../core/reasons.ts';
import type { Identity } from '../../core/types.ts';
import { newIdentity } from '../../core/identity.ts';
import { checkClaims as boundClaims } from '../../policy/claims.ts';

export interface AnswerRules {
  /** An answer's `iss`, when it has one, must equal this. */
  issuer?: string;
  /** An answer's `aud`, when it has one, must name one of these; undefined: any (allow_any_audience). */
  audiences?: readonly string[];
  /** An answer without `aud` is refused. */
  requireAudience: boolean;
  requireTokenType: boolean;
  /** Lowercased `token_type` values meaning an access token. */
  accessTokenTypes: ReadonlySet<string>;
  clockSkewSeconds: number;
}

export type Answer =
  /** The token passes: the identity and until when (seconds since epoch; undefined = no exp). */
  | { kind: 'active'; identity: Identity; exp?: number }
  /** The token does not pass; the same token will never pass (cacheable). */
  | { kind: 'rejected'; reason: InvalidTokenReason }
  /** The endpoint did not answer in a way we can use (not the token's fault): deny with 503. */
  | { kind: 'unusable'; reason: UnavailableReason };

/** A lone surrogate (with the u flag a surrogate pair is one code point and does not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

export function readAnswer(
  status: number,
  contentType: string | undefined,
  body: string,
  rules: AnswerRules,
  nowSeconds: number,
): Answer {
  // 4xx here means the server refused *us* (bad client credentials, wrong auth method):
  // a configuration problem, not a verdict on the caller's token.
  // Except RFC 7009's `unsupported_token_type` (oidc-provider answers it for anything that parses as
  // a JWT): a verdict on the token — not an access token this server issued — so invalid, not 503.
  if (
    status === 400 &&
    mediaType(contentType) === 'application/json' &&
    /"error"\s*:\s*"unsupported_token_type"/.test(body)
  ) {
    return { kind: 'rejected', reason: 'token_type_unsupported' };
  }
  if (status !== 200)
    return { kind: 'unusable', reason: status >= 500 ? 'introspection_http_5xx' : 'introspection_http_status' };
  if (mediaType(contentType) !== 'application/json') return { kind: 'unusable', reason: 'introspection_not_json' };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'unusable', reason: 'introspection_bad_json' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return { kind: 'unusable', reason: 'introspection_not_object' };
  return readClaims(json as Record<string, unknown>, rules, nowSeconds, body.length);
}

/** `textBytes`: the length of the JSON text the answer was parsed from, when known. */
export function readClaims(a: Record<string, unknown>, rules: AnswerRules, now: number, textBytes?: number): Answer {
  const no = (reason: InvalidTokenReason): Answer => ({ kind: 'rejected', reason });
  // `active: "true"`, 1 or a missing field are not `true`.
  if (a.active !== true) return no(a.active === false ? 'token_inactive' : 'introspection_active_not_boolean');

  if (a.token_type !== undefined) {
    // RFC 9449, §6.2: a DPoP-bound access token is introspected as token_type "DPoP" with cnf.jkt
    // (whose proof the sender-constraint step then checks).
    const dpopBound =
      typeof a.token_type === 'string' &&
      a.token_type.toLowerCase() === 'dpop' &&
      typeof a.cnf === 'object' &&
      a.cnf !== null &&
      'jkt' in a.cnf;
    if (!dpopBound && (typeof a.token_type !== 'string' || !rules.accessTokenTypes.has(a.token_type.toLowerCase())))
      return no('token_not_access_token');
  } else if (rules.requireTokenType) {
    return no('token_type_missing');
  }
  // Some servers (Ory Hydra) say what a token is in `token_use`.
  if (a.token_use !== undefined && a.token_use !== 'access_token') return no('token_not_access_token');
  // `cnf` (a DPoP-bound or certificate-bound token) is the decision's next step: it stays in the
  // claims, and src/core/sender-constraint.ts checks the proof it calls for.

  let exp: number | undefined;
  if (a.exp !== undefined) {
    if (!isFiniteNumber(a.exp)) return no('token_exp_invalid');
    if (a.exp <= now) return no('token_expired');
    exp = a.exp;
  }
  if (a.nbf !== undefined) {
    if (!isFiniteNumber(a.nbf)) return no('token_nbf_invalid');
    if (a.nbf > now + rules.clockSkewSeconds) return no('token_not_yet_valid');
  }
  if (a.iat !== undefined) {
    if (!isFiniteNumber(a.iat)) return no('token_iat_invalid');
    if (a.iat > now + rules.clockSkewSeconds) return no('token_iat_in_future');
  }

  // The answer comes from the configured endpoint: without `iss` it speaks of that server's own
  // token. With one, it must be the configured issuer (a server that also answers for tokens of
  // other issuers, federated or relayed, says so in `iss`).
  if (a.iss !== undefined && typeof a.iss !== 'string') return no('token_iss_invalid');
  if (rules.issuer !== undefined && a.iss !== undefined && a.iss !== rules.issuer) return no('token_issuer_mismatch');

  // `aud` present: it must name this API (a token for another API of the same server does not
  // pass here). Absent: the server did not restrict the token, which passes unless
  // require_audience. Only allow_any_audience (audiences undefined) skips the check.
  if (
    a.aud !== undefined &&
    typeof a.aud !== 'string' &&
    !(Array.isArray(a.aud) && a.aud.every((x) => typeof x === 'string'))
  ) {
    return no('token_aud_invalid');
  }
  if (a.aud === undefined) {
    if (rules.requireAudience) return no('token_audience_missing');
  } else if (rules.audiences) {
    const aud: string[] = Array.isArray(a.aud) ? a.aud : [a.aud];
    if (!aud.some((x) => rules.audiences!.includes(x))) return no('token_audience_mismatch');
  }

  if (a.scope !== undefined && typeof a.scope !== 'string') return no('token_scope_invalid');
  if (a.client_id !== undefined && (typeof a.client_id !== 'string' || a.client_id === ''))
    return no('token_client_id_invalid');
  if (a.sub !== undefined && (typeof a.sub !== 'string' || a.sub === '')) return no('token_sub_invalid');
  // A lone surrogate (`"\ud800"` in the JSON) has no UTF-8 form: no header, metadata or log can carry it.
  for (const v of [a.sub, a.client_id, a.iss, a.scope])
    if (typeof v === 'string' && LONE_SURROGATE.test(v)) return no('token_claim_not_unicode');

  // RFC 6749 §3.3: space-delimited, case-sensitive tokens.
  const scopes = a.scope === undefined ? [] : [...new Set(a.scope.split(' ').filter(Boolean))];
  // The answer's members become identity.claims: an answer is bounded by no header limit, so its
  // size and depth are checked here, once, before the identity is cached (the text's length first,
  // so an oversized answer is refused without a walk).
  const bounded = boundClaims(a, undefined, textBytes);
  if (!bounded.ok) return no(bounded.reason);
  const identity = newIdentity('oauth2', {
    subject: a.sub,
    clientId: a.client_id,
    scopes,
    issuer: a.iss,
    expiresAt: exp,
    claims: a,
  });
  return { kind: 'active', identity, exp };
}
