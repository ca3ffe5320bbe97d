// The request's authority (`:authority` / Host) to the one host name routes are matched against,
// or a refusal. Rules and reasons: docs/security.md, "Hosts".
//
//   authority = host [ ":" port ]               port: 1-5 digits, 1-65535
//   host      = name | IPv4 | "[" IPv6 "]"
//   name      = label *( "." label ) [ "." ]     label: 1-63 of a-z A-Z 0-9 - _ ; at most 253 in all
//
// Case is folded, one trailing dot (the DNS root) and the port are dropped. Everything else RFC 3986
// would let through as a reg-name (userinfo "@", "%" escapes, "," from a repeated Host, "!$&'()*+;=",
// whitespace, non-ASCII) is refused: each is either a second reading of the host or a sign of one.
import { isIPv6 } from 'node:net';
import { canonicalIPv6 } from './ip.ts';

// 1: name character, 2: upper-case letter (folded).
const NAME_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789-_') NAME_CHAR[c.charCodeAt(0)] = 1;
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') NAME_CHAR[c.charCodeAt(0)] = 2;

const DOT = 46;
const COLON = 58;

/**
 * The canonical host (lower case, no trailing dot, no port), or undefined when `authority` is not
 * a valid authority. Returns `authority` itself, without allocating, when it is already canonical.
 */
export function normalizeHost(authority: string): string | undefined {
  // Nearly every Check of a deployment names the same host: the last answer is kept.
  if (authority === lastAuthority) return lastHost;
  const host = readHost(authority);
  if (host !== undefined) {
    lastAuthority = authority;
    lastHost = host;
  }
  return host;
}

let lastAuthority: string | undefined;
let lastHost: string | undefined;

function readHost(authority: string): string | undefined {
  const len = authority.length;
  if (len === 0 || len > 261) return undefined;
  if (authority.charCodeAt(0) === 91 /* [ */) return ipLiteral(authority);

  let upper = false;
  let labelLen = 0;
  let end = len;
  for (let i = 0; i < len; i++) {
    const c = authority.charCodeAt(i);
    if (c === DOT) {
      if (labelLen === 0) return undefined; // "..", a leading dot, "."
      labelLen = 0;
      continue;
    }
    if (c === COLON) {
      if (!validPort(authority, i + 1)) return undefined;
      end = i;
      break;
    }
    const kind = c < 128 ? NAME_CHAR[c] : 0;
    if (kind === 0) return undefined;
    if (kind === 2) upper = true;
    if (++labelLen > 63) return undefined;
  }
  let hostEnd = end;
  if (labelLen === 0) {
    // Nothing before the port (":80"), or one trailing dot: the DNS root, the same host ("a.." and
    // "." were refused above).
    if (end === 0) return undefined;
    hostEnd = end - 1;
  }
  if (hostEnd > 253) return undefined;
  // WHATWG URL parsers read a name whose last label is a number as an IPv4 address ("127.1",
  // "0x7f.0.0.1", "2130706433"): only the canonical dotted-decimal form is accepted.
  if (lastLabelNumeric(authority, hostEnd) && !isCanonicalIPv4(authority, hostEnd)) return undefined;
  if (!upper && hostEnd === len) return authority;
  const host = hostEnd === len ? authority : authority.slice(0, hostEnd);
  return upper ? host.toLowerCase() : host;
}

function hexValue(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

function validPort(s: string, from: number): boolean {
  const n = s.length - from;
  if (n < 1 || n > 5) return false;
  let v = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    v = v * 10 + (c - 48);
  }
  return v >= 1 && v <= 65535;
}

function lastLabelNumeric(s: string, end: number): boolean {
  let start = s.lastIndexOf('.', end - 1) + 1;
  if (start >= end) return false;
  if (end - start > 2 && s.charCodeAt(start) === 48 && (s.charCodeAt(start + 1) | 0x20) === 120) {
    for (let i = start + 2; i < end; i++) if (!hexValue(s.charCodeAt(i))) return false;
    return true;
  }
  for (; start < end; start++) {
    const c = s.charCodeAt(start);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Four decimal parts 0-255 without leading zeros. */
function isCanonicalIPv4(s: string, end: number): boolean {
  let parts = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || value > 255) return false;
      parts++;
      digits = 0;
      value = 0;
      continue;
    }
    if (c < 48 || c > 57) return false;
    if (digits === 1 && value === 0) return false; // leading zero
    value = value * 10 + (c - 48);
    digits++;
  }
  return parts === 4;
}

/** `[IPv6]` with an optional port, as its canonical RFC 5952 text in brackets. No zone ids. */
function ipLiteral(authority: string): string | undefined {
  const close = authority.indexOf(']');
  if (close < 3) return undefined;
  const inner = authority.slice(1, close);
  if (inner.includes('%') || !isIPv6(inner)) return undefined;
  if (close + 1 < authority.length) {
    if (authority.charCodeAt(close + 1) !== COLON || !validPort(authority, close + 2)) return undefined;
  }
  return `[${canonicalIPv6(inner)}]`;
}
