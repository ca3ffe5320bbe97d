// Client addresses: which one a request comes from (source_ip_header, trusted hops), in one
// canonical text per address, and the prefix a rate limit counts it under. Rules: docs/security.md,
// "Client address".
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The canonical text of an IP address (IPv4 dotted decimal; IPv6 in RFC 5952 form, an IPv4-mapped
 * IPv6 address as its IPv4 address), or undefined when `s` is not exactly one IP address (no
 * brackets, port, zone id or surrounding space).
 */
export function canonicalIp(s: string): string | undefined {
  if (isIPv4(s)) return s;
  if (s.includes('%') || !isIPv6(s)) return undefined;
  const g = parseIPv6(s);
  return isV4Mapped(g) ? `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}` : formatIPv6(g);
}

/**
 * RFC 5952 text of a valid IPv6 address (lower case, no leading zeros, longest zero run as ::,
 * IPv4-mapped as ::ffff:a.b.c.d).
 */
export function canonicalIPv6(s: string): string {
  return formatIPv6(parseIPv6(s));
}

function isV4Mapped(g: number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** Eight 16-bit groups of an address node:net has already validated as IPv6. */
function parseIPv6(s: string): number[] {
  let text = s;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    // An embedded IPv4 address: its 32 bits as two groups.
    const [a, b, c, d] = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const dbl = text.indexOf('::');
  if (dbl === -1) return parse(text);
  const head = parse(text.slice(0, dbl));
  const rest = parse(text.slice(dbl + 2));
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

function formatIPv6(g: number[]): string {
  // RFC 5952 §5: an IPv4-mapped address keeps its IPv4 part in dotted decimal.
  if (isV4Mapped(g)) return `::ffff:${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  // The longest run of two or more zero groups (the first when tied) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * The client address a request states, read as Envoy's `xff_num_trusted_hops` reads
 * X-Forwarded-For: the entry `trustedHops` places from the right of a comma-separated list (0: the
 * rightmost, which the last proxy appended; everything further left was written by whoever sent the
 * request). Envoy joins repeated header lines with ",", so a second header line is just more
 * entries. Without the header, or with fewer entries than that, the TCP peer (`source.address`).
 * Undefined when the chosen entry is not exactly one valid IP address.
 */
export function clientAddress(peer: string, headerValue: string | undefined, trustedHops: number): string | undefined {
  // An empty header states no address (Envoy never sends one empty).
  if (headerValue === undefined || headerValue === '') return peer;
  let end = headerValue.length;
  for (let hop = 0; hop < trustedHops; hop++) {
    const comma = headerValue.lastIndexOf(',', end - 1);
    if (comma === -1) return peer;
    end = comma;
  }
  const start = end === 0 ? 0 : headerValue.lastIndexOf(',', end - 1) + 1;
  return canonicalIp(trimOws(headerValue, start, end));
}

function trimOws(s: string, start: number, end: number): string {
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * What a rate limit keyed by source address counts: the address's network at the configured prefix
 * length, so that one host holding a whole IPv6 /64 (the usual end-site assignment) gets one
 * budget, not 2^64. An address that cannot be read shares one budget with every other such address.
 */
export function addressPrefix(ip: string, ipv4Bits: number, ipv6Bits: number): string {
  const canonical = canonicalIp(ip);
  if (canonical === undefined) return 'unknown';
  if (isIPv4(canonical)) {
    if (ipv4Bits >= 32) return canonical;
    const n = canonical.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
    const masked = ipv4Bits === 0 ? 0 : (n >>> (32 - ipv4Bits)) * 2 ** (32 - ipv4Bits);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${ipv4Bits}`;
  }
  if (ipv6Bits >= 128) return canonical;
  const g = parseIPv6(canonical);
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, ipv6Bits - i * 16));
    g[i] = keep === 0 ? 0 : g[i] & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${formatIPv6(g)}/${ipv6Bits}`;
}
