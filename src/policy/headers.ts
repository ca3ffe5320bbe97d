// Header hygiene as configuration: which client headers never reach the upstream, which trusted
// ones are set. Follows Envoy's order (sets, then removals): a header is never both set and removed.
import type { HeaderSet, Identity } from '../core/types.ts';
import type { Config, IdentityField } from './schema.ts';

const UNSAFE_VALUE = /[\0\r\n]/;
const MAX_VALUE = 4096;
/** Identities (and routes without one) whose header lists are kept; see byIdentity. */
const IDENTITIES_KEPT = 4096;

function normalizeName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

export class HeaderPolicy {
  private readonly strip: Set<string>;
  private readonly prefixes: string[];
  private readonly setFields: [string, IdentityField][];
  readonly forwardCredentials: boolean;

  constructor(cfg: Config['headers']) {
    this.setFields = Object.entries(cfg.set);
    // Every header we set is also one the client may not supply.
    this.strip = new Set([...cfg.strip, ...Object.keys(cfg.set)].map(normalizeName));
    this.prefixes = cfg.strip_prefixes.map(normalizeName);
    this.forwardCredentials = cfg.forward_credentials;
  }

  // Header names repeat from request to request: remember each name's answer (bounded, so a
  // client sending random names cannot grow it without limit).
  private readonly strippedCache = new Map<string, boolean>();

  /** Is this client header one that must never reach the upstream? ("_" counts as "-".) */
  isStripped(name: string): boolean {
    let answer = this.strippedCache.get(name);
    if (answer === undefined) {
      const n = normalizeName(name);
      answer = this.strip.has(n) || this.prefixes.some((p) => n.startsWith(p));
      if (this.strippedCache.size >= 4096) this.strippedCache.clear();
      this.strippedCache.set(name, answer);
    }
    return answer;
  }

  // Identities are frozen and shared by every request presenting the same credential (identity.ts),
  // so their headers are too: the last route's list per identity, one list per route without one.
  // The lists are frozen; a caller that adds to one makes its own copy.
  // A bounded Map, cleared when full: never-seen tokens make an identity per Check, and an entry
  // for each (in a WeakMap, the first version) grew the heap and slowed every row of the full
  // bench (docs/performance.md, "A/B pairs").
  private readonly byIdentity = new Map<Identity, { route: string; set: readonly HeaderSet[] }>();
  private readonly anonymous = new Map<string, readonly HeaderSet[]>();

  /**
   * Trusted identity headers for an allowed request (the same frozen list for the same identity and
   * route); throws if a value could not be sent safely.
   */
  identityHeaders(identity: Identity | undefined, route: string): readonly HeaderSet[] {
    if (!identity) {
      let set = this.anonymous.get(route);
      if (!set) {
        set = this.buildIdentityHeaders(undefined, route);
        // Route names come from the config (or a context extension naming a configured route).
        if (this.anonymous.size < IDENTITIES_KEPT) this.anonymous.set(route, set);
      }
      return set;
    }
    const last = this.byIdentity.get(identity);
    if (last?.route === route) return last.set;
    const set = this.buildIdentityHeaders(identity, route);
    if (this.byIdentity.size >= IDENTITIES_KEPT) this.byIdentity.clear();
    this.byIdentity.set(identity, { route, set });
    return set;
  }

  private buildIdentityHeaders(identity: Identity | undefined, route: string): readonly HeaderSet[] {
    const out: HeaderSet[] = [];
    for (const [name, field] of this.setFields) {
      const value = fieldValue(identity, field, route);
      if (value === undefined || value === '') continue;
      if (UNSAFE_VALUE.test(value) || value.length > MAX_VALUE) throw new UnsafeHeaderValueError(name);
      out.push(Object.freeze({ name, value }));
    }
    return Object.freeze(out);
  }

  /**
   * Removals for an allowed request: stripped headers the request carries and credential headers
   * (unless forwarded), minus anything in `set`, since Envoy applies removals after sets.
   */
  removals(requestHeaders: Record<string, string>, set: readonly HeaderSet[], credentialHeaders: readonly string[]): string[] {
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

export class UnsafeHeaderValueError extends Error {
  constructor(readonly header: string) {
    super(`identity value for ${header} contains CR, LF or NUL, or is too long`);
  }
}

function fieldValue(identity: Identity | undefined, field: IdentityField, route: string): string | undefined {
  if (field === 'route') return route;
  if (!identity) return undefined;
  switch (field) {
    case 'subject':
      return identity.subject;
    case 'client_id':
      return identity.clientId;
    case 'scopes':
      return identity.scopes.join(' ');
    case 'method':
      return identity.method;
    case 'key_id':
      return identity.keyId;
    case 'issuer':
      return identity.issuer;
  }
}
