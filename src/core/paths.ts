// Path normalization: one reading of the path for Envoy, us and the upstream (README, "Routes and
// paths"; docs/envoy.md for what Envoy does to the path first).
// Anything that could be read two ways is rejected, not repaired.

export type PathResult = { ok: true; path: string } | { ok: false; reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
// Characters allowed literally in a path segment (RFC 3986 pchar minus ';', which some upstreams
// read as a path-parameter separator, plus '%' for escapes that are checked separately), as a
// table by char code: every Check runs this, and two char-code loops cost a fraction of the regex
// test, split('/') and includes() they replace (test/unit/paths.test.ts checks they agree).
const ALLOWED_LITERAL = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%/") ALLOWED_LITERAL[c.charCodeAt(0)] = 1;
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
    let decoded = '';
    for (let i = 0; i < path.length; i++) {
      const c = path[i];
      if (c !== '%') {
        decoded += c;
        continue;
      }
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, reason: 'path_bad_escape' };
      const code = parseInt(hex, 16);
      const ch = String.fromCharCode(code);
      if (code === 0x2f || code === 0x5c || code === 0x00) return { ok: false, reason: 'path_encoded_separator' };
      if (code === 0x25) return { ok: false, reason: 'path_double_encoding' };
      // Unreserved characters have one meaning encoded or not: decode them. Everything else stays
      // escaped (uppercase hex) so that it can never become syntax.
      decoded += UNRESERVED.test(ch) ? ch : '%' + hex.toUpperCase();
      i += 2;
    }
    out = decoded;
  }

  // Segments between slashes: an empty one ("//") anywhere wins over a dot segment ("." or "..").
  let dotSegment = false;
  let start = 1;
  for (let i = 1; i <= out.length; i++) {
    if (i < out.length && out.charCodeAt(i) !== SLASH) continue;
    const len = i - start;
    if (len === 0 && i < out.length) return { ok: false, reason: 'path_empty_segment' };
    if (out.charCodeAt(start) === DOT && (len === 1 || (len === 2 && out.charCodeAt(start + 1) === DOT))) dotSegment = true;
    start = i + 1;
  }
  if (dotSegment) return { ok: false, reason: 'path_dot_segment' };
  return { ok: true, path: out };
}

/** Whole-segment prefix match: `/v1/orders` matches `/v1/orders` and `/v1/orders/7`, not `/v1/ordersX`. */
export function matchesPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* '/' */;
}

/** Trailing slash dropped so `/v1/` and `/v1` mean the same prefix. */
export function canonicalPrefix(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : prefix;
}
