// Header hygiene as configuration: which client headers never reach the upstream, which trusted
// ones are set. Follows Envoy's order (sets, then removals): a header is never both set and removed.
import { UnsafeHeaderValueError } from '../core/errors.ts';
import type { HeaderRules } from '../core/policy.ts';
import type { HeaderSet, Identity } from '../core/types.ts';
import { Memo } from '../plumbing/memo.ts';
import {
  claimHeaderValue,
  isClaimReference,
  parseClaimReference,
  type ClaimHeaderSkip,
  type ClaimPath,
} from './claims.ts';
import type { Config, IdentityField, IdentityHeaderConfig } from './schema.ts';

// The safe form of an identity header value: visible ASCII (0x21-0x7E) without `"` `,` `;` `\`.
// What upstreams misread is outside it: `,` makes a list (RFC 9110 §5.3: a recipient may join
// field lines with commas, and many frameworks split on them), `;` starts parameters, `"` and `\`
// quote, leading or trailing whitespace is trimmed (so " bob" arrives as "bob"), controls and
// line separators (TAB, DEL, U+2028) and anything non-ASCII are read differently by different
// stacks, and a string that is not well-formed Unicode (a lone surrogate) cannot be UTF-8 at all:
// Envoy refuses a CheckResponse carrying it.
const SAFE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/;
/** A lone surrogate (with the u flag a surrogate pair is one code point and does not match). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const DEFAULT_MAX_LENGTH = 256;
const DEFAULT_MAX_LENGTH_SCOPES = 4096;

/**
 * Percent-encoding of the value's UTF-8 bytes, leaving only RFC 3986 unreserved characters
 * (letters, digits, `-` `.` `_` `~`) as they are: RFC 8187's value-chars, without `+` and the other
 * attr-chars a form decoder would read differently. Every decoder (decodeURIComponent, Python's
 * unquote, Go's PathUnescape, Java's URLDecoder) gives the original back. Undefined for a string
 * that has no UTF-8 form.
 */
export function percentEncode(value: string): string | undefined {
  if (LONE_SURROGATE.test(value)) return undefined;
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

interface SetRule {
  name: string;
  /** An identity field, or (`claims.<name>`) the claim at `claim`. */
  field: IdentityField | 'claim';
  claim?: ClaimPath;
  percentEncode: boolean;
  maxLength: number;
}

function setRule(name: string, cfg: IdentityHeaderConfig): SetRule {
  const c = typeof cfg === 'string' ? { from: cfg, unsafe: 'reject' as const, max_length: undefined } : cfg;
  const claim = isClaimReference(c.from) ? parseClaimReference(c.from, `headers.set.${name}`) : undefined;
  return {
    name,
    field: claim ? 'claim' : (c.from as IdentityField),
    claim,
    percentEncode: c.unsafe === 'percent_encode',
    maxLength: c.max_length ?? (c.from === 'scopes' ? DEFAULT_MAX_LENGTH_SCOPES : DEFAULT_MAX_LENGTH),
  };
}
/** Identities (and routes without one) whose header lists are kept; see identityHeaders. */
const IDENTITIES_KEPT = 4096;
const NAMES_KEPT = 4096;

function normalizeName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

export class HeaderPolicy implements HeaderRules {
  private readonly strip: Set<string>;
  private readonly prefixes: string[];
  private readonly setRules: SetRule[];
  readonly forwardCredentials: boolean;
  /**
   * Called when a header from a claim is left unset (absent, empty, another type): the runtime
   * counts it. Once per identity and route, as the header list is built once for them.
   */
  onClaimHeaderSkipped: ((header: string, why: ClaimHeaderSkip) => void) | undefined;

  constructor(cfg: Config['headers']) {
    this.setRules = Object.entries(cfg.set).map(([name, c]) => setRule(name, c));
    // Every header we set is also one the client may not supply.
    this.strip = new Set([...cfg.strip, ...Object.keys(cfg.set)].map(normalizeName));
    this.prefixes = cfg.strip_prefixes.map(normalizeName);
    this.forwardCredentials = cfg.forward_credentials;
  }

  // Header names repeat from request to request: each name's answer is kept.
  private readonly strippedNames = new Memo<string, boolean>(NAMES_KEPT);

  /** Is this client header one that must never reach the upstream? ("_" counts as "-".) */
  isStripped(name: string): boolean {
    const known = this.strippedNames.get(name);
    if (known !== undefined) return known;
    const n = normalizeName(name);
    return this.strippedNames.set(name, this.strip.has(n) || this.prefixes.some((p) => n.startsWith(p)));
  }

  // Identities are frozen and shared by every request presenting the same credential (identity.ts),
  // so their headers are too: the last route's list per identity, one list per route without one.
  // The lists are frozen; a caller that adds to one makes its own copy. The allow-bytes memo of the
  // encoder (src/envoy/codec/encoder.ts) relies on this: one (identity, route) of one policy, one list.
  private readonly byIdentity = new Memo<Identity, { route: string; set: readonly HeaderSet[] }>(IDENTITIES_KEPT);
  private readonly anonymous = new Memo<string, readonly HeaderSet[]>(IDENTITIES_KEPT);

  /**
   * Trusted identity headers for an allowed request (the same frozen list for the same identity and
   * route); throws if a value could not be sent safely.
   */
  identityHeaders(identity: Identity | undefined, route: string): readonly HeaderSet[] {
    if (!identity) {
      return this.anonymous.get(route) ?? this.anonymous.set(route, this.buildIdentityHeaders(undefined, route));
    }
    const last = this.byIdentity.get(identity);
    if (last?.route === route) return last.set;
    const set = this.buildIdentityHeaders(identity, route);
    this.byIdentity.set(identity, { route, set });
    return set;
  }

  // Runs once per identity and route (the list is kept, see identityHeaders): a cached credential
  // pays nothing for the checks and the encoding.
  private buildIdentityHeaders(identity: Identity | undefined, route: string): readonly HeaderSet[] {
    const out: HeaderSet[] = [];
    for (const rule of this.setRules) {
      let value: string;
      if (rule.field === 'claim') {
        const r = claimHeaderValue(identity?.claims, rule.claim!, (v) => safeForm(v, rule));
        if (!r.ok) {
          if (identity) this.onClaimHeaderSkipped?.(rule.name, r.reason);
          continue;
        }
        value = r.value;
      } else if (rule.field === 'scopes') {
        // Space-separated (RFC 6749 §3.3), each scope in the safe form or encoded on its own, so
        // the spaces keep separating scopes.
        if (!identity?.scopes.length) continue;
        value = identity.scopes.map((s) => safeForm(s, rule)).join(' ');
      } else {
        const raw = fieldValue(identity, rule.field, route);
        if (raw === undefined || raw === '') continue;
        value = safeForm(raw, rule);
      }
      if (value.length > rule.maxLength) throw new UnsafeHeaderValueError(rule.name, 'identity_value_too_long');
      out.push(Object.freeze({ name: rule.name, value }));
    }
    return Object.freeze(out);
  }

  /**
   * Removals for an allowed request: stripped headers the request carries and credential headers
   * (unless forwarded), minus anything in `set`, since Envoy applies removals after sets.
   */
  removals(
    requestHeaders: Record<string, string>,
    set: readonly HeaderSet[],
    credentialHeaders: readonly string[],
  ): string[] {
    // `set` holds a handful of headers: a scan is cheaper than building a Set on every Check, and
    // for-in over the (null-prototype) headers map cheaper than Object.keys' array.
    const out: string[] = [];
    for (const name in requestHeaders) {
      if (name.charCodeAt(0) === 58 /* ':' */ || name === 'host') continue; // Envoy ignores these removals
      if (this.isStripped(name) && !isSet(set, name)) out.push(name);
    }
    if (!this.forwardCredentials) {
      for (const name of credentialHeaders) if (!isSet(set, name) && !out.includes(name)) out.push(name);
    }
    return out;
  }
}

function isSet(set: readonly HeaderSet[], name: string): boolean {
  for (let i = 0; i < set.length; i++) if (set[i].name === name) return true;
  return false;
}

/** The value in the safe form: as it is, percent-encoded (percent_encode), or refused. */
function safeForm(value: string, rule: SetRule): string {
  if (rule.percentEncode) {
    const encoded = percentEncode(value);
    if (encoded === undefined) throw new UnsafeHeaderValueError(rule.name, 'identity_value_unsafe');
    return encoded;
  }
  if (!SAFE_VALUE.test(value)) throw new UnsafeHeaderValueError(rule.name, 'identity_value_unsafe');
  return value;
}

function fieldValue(
  identity: Identity | undefined,
  field: Exclude<IdentityField, 'scopes'> | 'claim',
  route: string,
): string | undefined {
  if (field === 'route') return route;
  if (!identity) return undefined;
  switch (field) {
    case 'subject':
      return identity.subject;
    case 'client_id':
      return identity.clientId;
    case 'method':
      return identity.method;
    case 'key_id':
      return identity.keyId;
    case 'issuer':
      return identity.issuer;
    default:
      return undefined;
  }
}
