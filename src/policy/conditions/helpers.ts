// The functions Portcullis adds to CEL for route conditions: address ranges and the local time of
// day. CEL has neither (cel-go's `ip()`/`cidr()` are a Kubernetes extension no npm implementation
// ships), and the built-in `getHours('Europe/Berlin')` builds a new Intl formatter on every call,
// which would dominate a Check. docs/policy.md, "Functions".
import { isIPv6 } from 'node:net';

/** A parsed address range: the network's bits and how many of them count. */
export interface Cidr {
  readonly family: 4 | 6;
  /** IPv4: one 32-bit word; IPv6: four. Host bits are zero. */
  readonly words: readonly number[];
  readonly prefix: number;
}

/**
 * An IPv4 address as an unsigned 32-bit number, or -1 unless `s` is exactly four decimal parts
 * 0-255 without leading zeros (the canonical form; "010.0.0.1" is read as octal by some stacks).
 */
export function parseIPv4(s: string, from = 0, to = s.length): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : 46; /* . */
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return -1;
    if (digits === 1 && part === 0) return -1; // leading zero
    if (++digits > 3) return -1;
    part = part * 10 + (c - 48);
  }
  return parts === 4 ? value : -1;
}

/** An IPv6 address (no zone id, no brackets) as four 32-bit words, or undefined. */
export function parseIPv6(s: string): number[] | undefined {
  if (s.includes('%') || !isIPv6(s)) return undefined;
  let text = s;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    // An embedded IPv4 address ("::ffff:10.0.0.1"): its 32 bits as two groups.
    const v4 = parseIPv4(text, lastColon + 1);
    if (v4 < 0) return undefined;
    text = `${text.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const dbl = text.indexOf('::');
  let groups: number[];
  if (dbl === -1) {
    groups = parse(text);
  } else {
    const head = parse(text.slice(0, dbl));
    const rest = parse(text.slice(dbl + 2));
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  }
  if (groups.length !== 8) return undefined;
  return [0, 1, 2, 3].map((i) => groups[2 * i] * 65536 + groups[2 * i + 1]);
}

/**
 * A range written `address/bits` (or a single address, meaning /32 or /128), or a reason it is not
 * one. Host bits must be zero: "10.1.2.3/8" is refused rather than read as 10.0.0.0/8, because the
 * writer may have meant either. IPv4 ranges are written in IPv4 form (an IPv4-mapped IPv6 range
 * would never match: addresses are compared in their canonical form).
 */
export function parseCidr(text: string): Cidr | string {
  if (text.length === 0 || text.length > 64) return 'not an address range';
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const bitsText = slash === -1 ? undefined : text.slice(slash + 1);
  const v4 = parseIPv4(addr);
  const family = v4 >= 0 ? 4 : 6;
  const words = v4 >= 0 ? [v4] : parseIPv6(addr);
  if (!words) return `"${text}" is not an IPv4 or IPv6 address range (address/bits)`;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (bitsText !== undefined) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max)
      return `"${text}": the prefix length must be 0-${max}`;
    prefix = Number(bitsText);
  }
  if (family === 6 && words[0] === 0 && words[1] === 0 && words[2] === 0xffff && prefix >= 96) {
    return `"${text}" is an IPv4-mapped IPv6 range; write it in IPv4 form`;
  }
  for (let i = 0; i < words.length; i++) {
    if ((words[i] & ~mask(prefix - 32 * i)) >>> 0 !== 0)
      return `"${text}" has host bits set; write the network address (e.g. 10.0.0.0/8)`;
  }
  return { family, words, prefix };
}

/** The 32-bit mask of a word with `bits` leading ones (clamped to 0-32). */
function mask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** An address as its family and words; an IPv4-mapped IPv6 address counts as its IPv4 address. */
function parseAddress(s: string): { family: 4 | 6; words: number[] } | undefined {
  const v4 = parseIPv4(s);
  if (v4 >= 0) return { family: 4, words: [v4] };
  const w = parseIPv6(s);
  if (!w) return undefined;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { family: 4, words: [w[3]] };
  return { family: 6, words: w };
}

function contains(c: Cidr, a: { family: 4 | 6; words: number[] }): boolean {
  if (c.family !== a.family) return false;
  for (let i = 0; i < c.words.length; i++) {
    const m = mask(c.prefix - 32 * i);
    if (m === 0) return true;
    if ((a.words[i] & m) >>> 0 !== c.words[i]) return false;
  }
  return true;
}

// Ranges come from the config (literals, checked at load) or from a claim (an API key's metadata):
// a bounded cache, cleared when full.
const cidrCache = new Map<string, Cidr>();
const CIDR_CACHE_MAX = 1024;

function cachedCidr(text: string): Cidr {
  let c = cidrCache.get(text);
  if (c === undefined) {
    const parsed = parseCidr(text);
    if (typeof parsed === 'string') throw new HelperError('invalid_cidr', 'not an address range');
    if (cidrCache.size >= CIDR_CACHE_MAX) cidrCache.clear();
    cidrCache.set(text, parsed);
    c = parsed;
  }
  return c;
}

/**
 * Is `ip` inside one of `ranges`? Throws (an evaluation error, so the condition denies) when `ip`
 * is not an address or a range is not a range: `!request.source_ip.inCidr(...)` must never allow
 * because the address could not be read.
 */
export function ipInCidr(ip: string, ranges: string | readonly string[]): boolean {
  const a = parseAddress(ip);
  if (!a) throw new HelperError('invalid_ip', 'not an IP address');
  if (typeof ranges === 'string') return contains(cachedCidr(ranges), a);
  let inside = false;
  // Every range is read, even after a match: a bad one is an error wherever it stands.
  for (const r of ranges) if (contains(cachedCidr(r), a)) inside = true;
  return inside;
}

/** An error a helper raises for a value it cannot read (never carries the value). */
export class HelperError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Local time. One formatter per zone, and the fields of the last second per zone: at any rate
// the time of day changes once a second, so most Checks reuse the answer.
interface LocalFields {
  second: number;
  hours: bigint;
  minutes: bigint;
  dayOfWeek: bigint;
}
const formatters = new Map<string, Intl.DateTimeFormat>();
const lastFields = new Map<string, LocalFields>();
const DAYS: Record<string, bigint> = { Sun: 0n, Mon: 1n, Tue: 2n, Wed: 3n, Thu: 4n, Fri: 5n, Sat: 6n };

/** Is `zone` an IANA time zone this runtime knows (e.g. `Europe/Berlin`, `UTC`)? */
export function isTimeZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    // Zones reach here only as literals of a loaded config (checked at load): a handful.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      hour: 'numeric',
      minute: 'numeric',
      hourCycle: 'h23',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Hours (0-23), minutes (0-59) and day of week (0 = Sunday, as CEL's getDayOfWeek) in `zone`. */
export function localTime(at: Date, zone: string): LocalFields {
  const ms = at.getTime();
  if (!Number.isFinite(ms)) throw new HelperError('invalid_timestamp', 'not a valid time');
  const second = Math.floor(ms / 1000);
  const last = lastFields.get(zone);
  if (last !== undefined && last.second === second) return last;
  let hours = -1;
  let minutes = -1;
  let day: bigint | undefined;
  for (const p of formatter(zone).formatToParts(at)) {
    if (p.type === 'hour') hours = Number(p.value);
    else if (p.type === 'minute') minutes = Number(p.value);
    else if (p.type === 'weekday') day = DAYS[p.value];
  }
  if (!(hours >= 0 && hours <= 23 && minutes >= 0 && minutes <= 59 && day !== undefined)) {
    throw new HelperError('invalid_timestamp', 'the local time could not be read');
  }
  const fields = { second, hours: BigInt(hours), minutes: BigInt(minutes), dayOfWeek: day };
  lastFields.set(zone, fields);
  return fields;
}
