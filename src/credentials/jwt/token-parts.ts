// Splitting a compact JWS and judging its header before any key is looked up.
// These rules do not depend on the issuer: whatever an issuer allows, a token that names its own
// key (jku, x5u, jwk, x5c), asks for critical extensions, nests another JWT, or uses `none` or an
// HMAC algorithm is refused here (DESIGN "Never"). Nothing in a token is ever fetched.
import { InvalidCredentialError } from '../../core/errors.ts';

export interface JoseHeader {
  alg?: unknown;
  kid?: unknown;
  typ?: unknown;
  cty?: unknown;
  crit?: unknown;
  [k: string]: unknown;
}

export interface TokenParts {
  /** Frozen: shared by every token with the same header segment (see headerMemo). */
  header: Readonly<JoseHeader>;
  payload: Record<string, unknown>;
  alg: string;
  kid?: string;
}

interface AcceptedHeader {
  header: Readonly<JoseHeader>;
  alg: string;
  kid?: string;
}

/**
 * Header segments that already passed the rules below. An issuer's tokens share a handful of
 * header segments (one per key and `typ`), so for a never-seen token the base64 and JSON work of
 * its header is done once per segment, not per token. Only accepted headers are kept, and only
 * short ones; when full it starts over, so a flood of made-up headers costs the flood its own
 * parsing and nothing else.
 */
const headerMemo = new Map<string, AcceptedHeader>();
export const HEADER_MEMO_MAX = 256;
const HEADER_MEMO_MAX_LENGTH = 512;

/** Header segments remembered now (tests: the memo stays bounded). */
export function headerMemoSize(): number {
  return headerMemo.size;
}

/** Header parameters that name or carry a key: a token never chooses the key that verifies it. */
const KEY_REFERENCE_PARAMS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

function invalid(reason: string): never {
  throw new InvalidCredentialError(reason);
}

function decodeJsonObject(segment: string, reason: string): Record<string, unknown> {
  if (segment.length === 0) invalid(reason);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    invalid(reason);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(reason);
  return value as Record<string, unknown>;
}

/** `typ` / token_types values compared as RFC 8725 §3.11 / RFC 9068 §4 say: case-insensitive, `application/` optional. */
export function normalizeTyp(typ: string): string {
  const t = typ.trim().toLowerCase();
  return t.startsWith('application/') ? t.slice('application/'.length) : t;
}

/**
 * Decodes a compact JWS and applies the issuer-independent header rules.
 * Throws InvalidCredentialError with a precise reason; never returns a token that names its own key.
 */
export function parseToken(token: string): TokenParts {
  const first = token.indexOf('.');
  const second = first === -1 ? -1 : token.indexOf('.', first + 1);
  if (first === -1 || second === -1) invalid('jwt_malformed');
  if (token.indexOf('.', second + 1) !== -1) {
    // Five segments: a JWE. Encrypted access tokens are not accepted (and never decrypted here).
    invalid('jwt_encrypted_unsupported');
  }
  const segment = token.slice(0, first);
  let accepted = headerMemo.get(segment);
  if (accepted === undefined) {
    accepted = judgeHeader(segment);
    if (segment.length <= HEADER_MEMO_MAX_LENGTH) {
      if (headerMemo.size >= HEADER_MEMO_MAX) headerMemo.clear();
      // A copy: `segment` is a slice of the token, and V8 would keep the whole token (a bearer
      // credential) alive for as long as the memo holds its slice.
      headerMemo.set(Buffer.from(segment, 'latin1').toString('latin1'), accepted);
    }
  }

  const payload = decodeJsonObject(token.slice(first + 1, second), 'jwt_payload_malformed');
  if (second + 1 === token.length) invalid('jwt_signature_missing');
  return { header: accepted.header, payload, alg: accepted.alg, kid: accepted.kid };
}

/** The issuer-independent header rules (DESIGN "Never"); throws the precise reason. */
function judgeHeader(segment: string): AcceptedHeader {
  const h = decodeJsonObject(segment, 'jwt_header_malformed') as JoseHeader;

  const alg = h.alg;
  if (typeof alg !== 'string' || alg.length === 0) invalid('jwt_alg_missing');
  const algLower = alg.toLowerCase();
  if (algLower === 'none') invalid('jwt_alg_none');
  // HMAC with a shared secret is never accepted: with a public key as the "secret" it is a forgery.
  if (algLower.startsWith('hs')) invalid('jwt_alg_hmac');
  for (const p of KEY_REFERENCE_PARAMS) if (p in h) invalid('jwt_header_key_reference');
  if ('crit' in h) invalid('jwt_crit_unsupported');
  // Unencoded payloads (RFC 7797) need `crit`, already refused; refuse the bare parameter too.
  if ('b64' in h) invalid('jwt_b64_unsupported');
  // `cty` signals a nested JWT (RFC 7519 §5.2) or other content; an access token has none.
  if ('cty' in h) invalid('jwt_nested_unsupported');
  if (h.kid !== undefined && (typeof h.kid !== 'string' || h.kid.length === 0 || h.kid.length > 256)) invalid('jwt_kid_invalid');
  if (h.typ !== undefined && typeof h.typ !== 'string') invalid('jwt_typ_invalid');
  return { header: Object.freeze(h), alg, kid: h.kid as string | undefined };
}
