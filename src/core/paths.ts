// Path normalization: one reading of the path for Envoy, us and the upstream (docs/envoy.md for
// what Envoy does to the path first). Anything that could be read two ways is rejected, not
// repaired. The rules and why each exists: docs/security.md, "Paths".

import type { InvalidRequestReason } from './reasons.ts';

export type PathResult = { ok: true; path: string } | { ok: false; reason: InvalidRequestReason };

// Characters allowed literally in a path segment (RFC 3986 pchar minus ';', which some upstreams
// read as a path-parameter separator, plus '%' for escapes that are checked separately), as a
// table by char code: every Check runs this, and two char-code loops do without the regex
// test, split('/') and includes() they replace (test/unit/paths.test.ts checks they agree).
const ALLOWED_LITERAL = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%/")
  ALLOWED_LITERAL[c.charCodeAt(0)] = 1;
// What a percent-escape of an ASCII byte becomes: 1 decoded (unreserved: one meaning either way),
// 0 kept escaped, or the reason it is refused.
const UNRESERVED = 1;
const KEEP = 0;
const ESCAPED_ASCII: Array<number | InvalidRequestReason> = new Array<number | InvalidRequestReason>(128).fill(KEEP);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~')
  ESCAPED_ASCII[c.charCodeAt(0)] = UNRESERVED;
for (let c = 1; c < 0x20; c++) ESCAPED_ASCII[c] = 'path_encoded_control';
ESCAPED_ASCII[0x7f] = 'path_encoded_control';
// A path decoded once more by the upstream must not gain a separator, a query, a fragment, a
// path parameter, or lose characters to trimming.
ESCAPED_ASCII[0x00] = 'path_encoded_separator';
ESCAPED_ASCII[0x2f] = 'path_encoded_separator'; // /
ESCAPED_ASCII[0x5c] = 'path_encoded_separator'; // \
ESCAPED_ASCII[0x25] = 'path_double_encoding'; // %
ESCAPED_ASCII[0x20] = 'path_encoded_whitespace';
ESCAPED_ASCII[0x3f] = 'path_encoded_delimiter'; // ?
ESCAPED_ASCII[0x23] = 'path_encoded_delimiter'; // #
ESCAPED_ASCII[0x3b] = 'path_encoded_delimiter'; // ;

const SLASH = 47;
const DOT = 46;
const PERCENT = 37;

/** Splits `:path` into path and query, decodes unreserved escapes, rejects ambiguity. */
export function normalizePath(rawPath: string): PathResult {
  if (typeof rawPath !== 'string' || rawPath.length === 0) return { ok: false, reason: 'path_empty' };
  if (rawPath.length > 8192) return { ok: false, reason: 'path_too_long' };
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (path.charCodeAt(0) !== SLASH) return { ok: false, reason: 'path_not_absolute' };
  let escaped = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128 || ALLOWED_LITERAL[c] === 0) return { ok: false, reason: 'path_bad_character' };
    if (c === PERCENT) escaped = true;
  }

  let out = path;
  if (escaped) {
    const decoded = decodeEscapes(path);
    if (!decoded.ok) return decoded;
    out = decoded.path;
  }

  // Segments between slashes: an empty one ("//") anywhere wins over a dot segment ("." or ".."),
  // which wins over a segment ending in a dot ("admin.", "...").
  let dotSegment = false;
  let trailingDot = false;
  let start = 1;
  for (let i = 1; i <= out.length; i++) {
    if (i < out.length && out.charCodeAt(i) !== SLASH) continue;
    const len = i - start;
    if (len === 0 && i < out.length) return { ok: false, reason: 'path_empty_segment' };
    if (len > 0 && out.charCodeAt(i - 1) === DOT) {
      if (len === 1 || (len === 2 && out.charCodeAt(start) === DOT)) dotSegment = true;
      else trailingDot = true;
    }
    start = i + 1;
  }
  if (dotSegment) return { ok: false, reason: 'path_dot_segment' };
  if (trailingDot) return { ok: false, reason: 'path_trailing_dot' };
  return { ok: true, path: out };
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * Unreserved escapes decoded, every other escape kept (uppercase hex) so that it can never become
 * syntax. Escaped bytes >= 0x80 must form valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), and the characters they spell are checked by unsafeCharacter.
 */
function decodeEscapes(path: string): PathResult {
  let decoded = '';
  // UTF-8 state: continuation bytes still needed, the code point so far, and the range the next
  // byte must fall in (RFC 3629 §4 excludes overlong forms and surrogates by these ranges).
  let need = 0;
  let cp = 0;
  let lo = 0x80;
  let hi = 0xbf;
  for (let i = 0; i < path.length; i++) {
    const ch = path.charCodeAt(i);
    if (ch !== PERCENT) {
      if (need > 0) return { ok: false, reason: 'path_invalid_utf8' };
      decoded += path[i];
      continue;
    }
    const h1 = i + 1 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const h2 = i + 2 < path.length ? hexValue(path.charCodeAt(i + 2)) : -1;
    if (h1 < 0 || h2 < 0) return { ok: false, reason: need > 0 ? 'path_invalid_utf8' : 'path_bad_escape' };
    const b = (h1 << 4) | h2;
    i += 2;
    if (need > 0) {
      if (b < lo || b > hi) return { ok: false, reason: 'path_invalid_utf8' };
      cp = (cp << 6) | (b & 0x3f);
      lo = 0x80;
      hi = 0xbf;
      decoded += '%' + HEX[b];
      if (--need === 0) {
        const unsafe = unsafeCharacter(cp);
        if (unsafe) return { ok: false, reason: unsafe };
      }
      continue;
    }
    if (b < 0x80) {
      const rule = ESCAPED_ASCII[b];
      if (typeof rule === 'string') return { ok: false, reason: rule };
      decoded += rule === UNRESERVED ? String.fromCharCode(b) : '%' + HEX[b];
      continue;
    }
    // A lead byte: C0, C1 and F5-FF never start a valid sequence; E0, ED, F0, F4 narrow the next byte.
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else {
      return { ok: false, reason: 'path_invalid_utf8' };
    }
    decoded += '%' + HEX[b];
  }
  if (need > 0) return { ok: false, reason: 'path_invalid_utf8' };
  return { ok: true, path: decoded };
}

const HEX: string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).toUpperCase().padStart(2, '0'));

// Compiled once; only reached for percent-encoded non-ASCII characters, which API paths rarely carry.
const WHITESPACE = /\p{White_Space}/u;
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}]/u;
const ASCII = /[\x00-\x7f]/;

/**
 * Why a decoded non-ASCII character is refused, or undefined. C1 controls and Unicode whitespace
 * (which trim() and strip() remove), invisible format characters (which NFKC_Casefold and many
 * sanitizers drop), and any character that NFKC or case mapping turns into ASCII (fullwidth
 * "ａdmin", "ſ" -> "S", "ı" -> "I", "K" (Kelvin) -> "k", "／" -> "/"): each lets an upstream that
 * normalizes read a different path than the one matched.
 */
export function unsafeCharacter(cp: number): InvalidRequestReason | undefined {
  if (cp <= 0x9f) return 'path_encoded_control';
  const s = String.fromCodePoint(cp);
  if (WHITESPACE.test(s)) return 'path_encoded_whitespace';
  if (INVISIBLE.test(s)) return 'path_encoded_invisible';
  if (ASCII.test(s.normalize('NFKC')) || ASCII.test(s.toLowerCase()) || ASCII.test(s.toUpperCase()))
    return 'path_confusable';
  return undefined;
}

/** ASCII lower case, without allocating when there is nothing to lower (the usual API path). */
export function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/**
 * Does `path` fall under route literal `lit` at a segment boundary? After the literal comes the
 * end or a `/`; with `formatSuffix`, also a `.` (a format suffix: Rails routes `/admin.json` to
 * `/admin`, Spring's suffix pattern matching did the same). Only protected routes fold the suffix
 * (RouteTable): folding widens a route, and a public route must never grow onto paths such as
 * `/docs.internal/` that a later protected route covers.
 */
export function matchesPrefix(path: string, prefix: string, formatSuffix: boolean): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length) return true;
  const c = path.charCodeAt(prefix.length);
  return c === SLASH || (formatSuffix && c === DOT);
}

/**
 * Exact match, also in the trailing-slash form (`/v1/secret/`) and, with `formatSuffix`, with a
 * format suffix (`/v1/secret.json`, `/v1/secret.json/`): upstreams commonly fold both onto the
 * same handler.
 */
export function matchesExact(path: string, lit: string, formatSuffix: boolean): boolean {
  if (!path.startsWith(lit)) return false;
  const n = lit.length;
  if (path.length === n) return true;
  const c = path.charCodeAt(n);
  if (c === SLASH) return path.length === n + 1 && n > 1;
  if (formatSuffix && c === DOT && n > 1) {
    const slash = path.indexOf('/', n);
    return slash === -1 || slash === path.length - 1;
  }
  return false;
}

/** Trailing slash dropped so `/v1/` and `/v1` mean the same prefix. */
export function canonicalPrefix(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : prefix;
}
