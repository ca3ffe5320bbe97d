// Request-derived values for decision logs. A client controls every one of them, so each is logged
// only validated (method, source_ip), or bounded and free of anything shaped like a credential
// (path, request_id, identity fields): a key pasted into the wrong field must not reach the log.
// docs/security.md, "Request-derived log fields".
import { canonicalIp } from '../core/ip.ts';

/**
 * The IANA HTTP Method Registry (https://www.iana.org/assignments/http-methods). Anything else is
 * logged as `_OTHER`, as OpenTelemetry's semantic conventions do for `http.request.method`.
 */
const KNOWN_METHODS = new Set([
  'ACL',
  'BASELINE-CONTROL',
  'BIND',
  'CHECKIN',
  'CHECKOUT',
  'CONNECT',
  'COPY',
  'DELETE',
  'GET',
  'HEAD',
  'LABEL',
  'LINK',
  'LOCK',
  'MERGE',
  'MKACTIVITY',
  'MKCALENDAR',
  'MKCOL',
  'MKREDIRECTREF',
  'MKWORKSPACE',
  'MOVE',
  'OPTIONS',
  'ORDERPATCH',
  'PATCH',
  'POST',
  'PRI',
  'PROPFIND',
  'PROPPATCH',
  'PUT',
  'QUERY',
  'REBIND',
  'REPORT',
  'SEARCH',
  'TRACE',
  'UNBIND',
  'UNCHECKOUT',
  'UNLINK',
  'UNLOCK',
  'UPDATE',
  'UPDATEREDIRECTREF',
  'VERSION-CONTROL',
]);

export const MAX_LOGGED_PATH = 256;
export const MAX_LOGGED_ID = 128;
export const REDACTED = '[redacted]';

export function logMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** The canonical text of a valid IP address, else undefined (never the raw value). */
export function logIp(ip: string | undefined): string | undefined {
  return ip ? canonicalIp(ip) : undefined;
}

/**
 * Does `v` carry something shaped like a credential: an API key (`<prefix>_`), a JWT or JWS
 * segment (`eyJ`: base64url of `{"`), or one of the credential values this request presented?
 */
export function looksLikeSecret(v: string, apiKeyPrefix: string | null, presented: readonly string[]): boolean {
  if (apiKeyPrefix && v.includes(`${apiKeyPrefix}_`)) return true;
  if (v.includes('eyJ')) return true;
  for (const p of presented) if (p.length >= 8 && v.includes(p)) return true;
  return false;
}

/**
 * Envoy's x-request-id (a UUID unless a client's is preserved): at most MAX_LOGGED_ID characters of
 * visible ASCII (others escaped), so it still finds Envoy's access-log line; `[redacted]` when it
 * is shaped like a credential.
 */
export function logRequestId(
  id: string | undefined,
  apiKeyPrefix: string | null,
  presented: readonly string[],
): string | undefined {
  if (id === undefined) return undefined;
  return looksLikeSecret(id, apiKeyPrefix, presented) ? REDACTED : visibleAscii(id, MAX_LOGGED_ID);
}

/**
 * The path as the client sent it (as Envoy's access log has it), without its query: bytes outside
 * visible ASCII escaped, at most MAX_LOGGED_PATH characters, a segment shaped like a credential
 * replaced.
 */
export function logPath(rawPath: string, apiKeyPrefix: string | null, presented: readonly string[]): string {
  const q = rawPath.indexOf('?');
  const p = visibleAscii(q === -1 ? rawPath : rawPath.slice(0, q), MAX_LOGGED_PATH);
  if (!looksLikeSecret(p, apiKeyPrefix, presented)) return p;
  return p
    .split('/')
    .map((s) => (s && looksLikeSecret(s, apiKeyPrefix, presented) ? REDACTED : s))
    .join('/');
}

/** A value from a verified identity (client_id, key_id): bounded and in visible characters. */
export function logIdentityValue(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return visibleAscii(v, MAX_LOGGED_ID);
}

/** Control characters, space, DEL and non-ASCII as %XX (UTF-8), cut at `max` input characters. */
function visibleAscii(s: string, max: number): string {
  let plain = true;
  for (let i = 0; i < s.length && i < max; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) {
      plain = false;
      break;
    }
  }
  const cut = s.length > max ? s.slice(0, max) : s;
  const out = plain ? cut : Array.from(cut, (ch) => (/^[\x21-\x7e]$/.test(ch) ? ch : encodeChar(ch))).join('');
  return s.length > max ? out + '…' : out;
}

function encodeChar(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join('');
}
