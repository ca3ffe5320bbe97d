// Splitting a compact JWS and judging its header before any key is looked up.
// These rules do not depend on the issuer: whatever an issuer allows, a token that names its own
// key (jku, x5u, jwk, x5c), asks for critical extensions, nests another JWT, or uses `none` or an
// HMAC algorithm is refused here (docs/jwt.md). Nothing in a token is ever fetched.
import { isUtf8 } from 'node:buffer';
import { InvalidCredentialError } from '../../core/errors.ts';
import { Memo } from '../../plumbing/memo.ts';
import type { InvalidTokenReason } from '../../core/reasons.ts';

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
 * short ones.
 */
export const HEADER_MEMO_MAX = 256;
const headerMemo = new Memo<string, AcceptedHeader>(HEADER_MEMO_MAX);
const HEADER_MEMO_MAX_LENGTH = 512;

/** Header segments remembered now (tests: the memo stays bounded). */
export function headerMemoSize(): number {
  return headerMemo.size;
}

/** Header parameters that name or carry a key: a token never chooses the key that verifies it. */
const KEY_REFERENCE_PARAMS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

function invalid(reason: InvalidTokenReason): never {
  throw new InvalidCredentialError(reason);
}

// One token, one spelling. Base64url (RFC 7515 §2: no padding) has several spellings of the same
// bytes: Node's decoder also takes `+`, `/`, `=` and skips characters outside the alphabet, and the
// unused low bits of the last character are ignored, so `…Q` and `…R` can decode alike. Every
// segment must be the one canonical spelling of its bytes: then a token's bytes and its text are
// one-to-one, and a variant of a valid token is refused before anything (the verified-token
// cache included, which is keyed by the text) can treat it as the token it decodes to.
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Value of a base64url character (callers have checked the alphabet). */
function sextet(c: number): number {
  if (c >= 97) return c - 71; // a-z: 26..51
  if (c >= 65) return c - 65; // A-Z: 0..25
  if (c >= 48) return c - 48 + 52; // 0-9: 52..61
  return c === 45 ? 62 : 63; // - _
}

/** True when `segment` is the canonical base64url spelling of some bytes: alphabet, no padding, zero unused bits. */
export function isCanonicalBase64url(segment: string): boolean {
  const rest = segment.length % 4;
  if (rest === 1 || !BASE64URL.test(segment)) return false;
  if (rest === 0) return true;
  const last = sextet(segment.charCodeAt(segment.length - 1));
  // 2 characters carry 1 byte (4 unused bits), 3 carry 2 bytes (2 unused bits).
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/** A `\uD800`-`\uDFFF` escape in JSON text: the only way valid UTF-8 JSON can hold a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** A lone surrogate (with the u flag, a surrogate pair is one code point and does not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Whether every string (keys included) in a parsed JSON value is well-formed Unicode. Iterative: no
 * recursion on hostile nesting.
 */
function wellFormedStrings(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return false;
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) return false;
        stack.push(x);
      }
    }
  }
  return true;
}

/**
 * A header or payload segment: canonical base64url of valid UTF-8 (no overlong forms, no encoded
 * surrogates: node's decoder would silently turn them into U+FFFD, so `C0 AF` would read as a
 * character the signer never wrote), holding a JSON object whose strings are well-formed Unicode
 * (a `\ud800` escape is valid UTF-8 JSON but a string no UTF-8 header or log can carry).
 */
function decodeJsonObject(
  segment: string,
  reason: 'jwt_header_malformed' | 'jwt_payload_malformed',
): Record<string, unknown> {
  if (segment.length === 0) invalid(reason);
  if (!isCanonicalBase64url(segment)) invalid('jwt_base64_invalid');
  const bytes = Buffer.from(segment, 'base64url');
  if (!isUtf8(bytes)) invalid('jwt_utf8_invalid');
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    invalid(reason);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(reason);
  if (SURROGATE_ESCAPE.test(text) && !wellFormedStrings(value)) invalid('jwt_utf8_invalid');
  return value as Record<string, unknown>;
}

/**
 * `typ` / token_types values compared as RFC 8725 §3.11 / RFC 9068 §4 say: ASCII case-insensitive,
 * the `application/` prefix optional, and nothing else: no trimming, no parameters, no Unicode case
 * folding (`toLowerCase` maps the Kelvin sign to `k`). Anything outside visible ASCII normalizes to
 * the empty string, which no configured type equals.
 */
export function normalizeTyp(typ: string): string {
  if (!/^[\x21-\x7e]+$/.test(typ)) return '';
  const t = typ.toLowerCase();
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
  const third = token.indexOf('.', second + 1);
  if (third !== -1) {
    // Five segments: a JWE. Encrypted access tokens are not accepted (and never decrypted here).
    // Any other count (`h.p.s.`, `h.p.s.x`) is no JOSE serialization at all.
    let dots = 3;
    for (let i = token.indexOf('.', third + 1); i !== -1; i = token.indexOf('.', i + 1)) dots++;
    invalid(dots === 4 ? 'jwt_encrypted_unsupported' : 'jwt_malformed');
  }
  const segment = token.slice(0, first);
  let accepted = headerMemo.get(segment);
  if (accepted === undefined) {
    accepted = judgeHeader(segment);
    if (segment.length <= HEADER_MEMO_MAX_LENGTH) {
      // A copy: `segment` is a slice of the token, and V8 would keep the whole token (a bearer
      // credential) alive for as long as the memo holds its slice.
      headerMemo.set(Buffer.from(segment, 'latin1').toString('latin1'), accepted);
    }
  }

  const payload = decodeJsonObject(token.slice(first + 1, second), 'jwt_payload_malformed');
  if (second + 1 === token.length) invalid('jwt_signature_missing');
  if (!isCanonicalBase64url(token.slice(second + 1))) invalid('jwt_base64_invalid');
  return { header: accepted.header, payload, alg: accepted.alg, kid: accepted.kid };
}

/** The issuer-independent header rules (docs/jwt.md); throws the precise reason. */
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
  if (h.kid !== undefined && (typeof h.kid !== 'string' || h.kid.length === 0 || h.kid.length > 256))
    invalid('jwt_kid_invalid');
  if (h.typ !== undefined && typeof h.typ !== 'string') invalid('jwt_typ_invalid');
  return { header: Object.freeze(h), alg, kid: h.kid };
}
