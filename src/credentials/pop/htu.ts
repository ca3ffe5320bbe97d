// The DPoP `htu` (RFC 9449, §4.2, §4.3): the URI the client called, without query and fragment,
// compared after RFC 3986 syntax-based and scheme-based normalization (RFC 3986, §6.2.2, §6.2.3).
//
// The request side is rebuilt from what Envoy sends: `:scheme`, `:authority` and `:path` (the path
// with its query, which is cut off here). Behind a proxy that terminates TLS, or one that serves a
// public host name and forwards to an internal one, Envoy sees another origin than the client
// called: `external_origin` (one origin, or one per request authority) replaces Envoy's scheme and
// authority, and its optional path is a prefix the front proxy strips. docs/proof-of-possession.md,
// "How htu is rebuilt".
//
// Both sides go through one function, normalizeHtu(): WHATWG URL parsing (lower-case scheme and
// host, default port dropped, dot-segments removed, an empty path becomes "/"), then percent-escapes
// with upper-case hex digits and unreserved characters decoded. What a URI may not contain (space,
// control and non-ASCII characters, "\", userinfo, schemes other than http and https) is refused
// rather than repaired: WHATWG parsing would silently remove or rewrite it, so two different
// request targets could compare equal.

/** Longest htu (either side) that is compared at all. */
export const MAX_HTU_LENGTH = 8192;

// Printable ASCII without space and "\" (WHATWG reads "\" as "/" in http(s) URLs).
const URI_CHARS = /^[\x21-\x5b\x5d-\x7e]+$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The normalized form of an absolute http(s) URI without its query and fragment, or undefined
 * when it is not one. Two htu values match when their normalized forms are equal.
 */
export function normalizeHtu(uri: string): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_HTU_LENGTH || !URI_CHARS.test(uri))
    return undefined;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username !== '' || url.password !== '' || url.hostname === '') return undefined;
  return `${url.protocol}//${url.host}${normalizePercentEncoding(url.pathname)}`;
}

/** RFC 3986, §6.2.2.1, §6.2.2.2: "%7e" -> "~", "%2f" -> "%2F". */
function normalizePercentEncoding(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/** One configured external origin, parsed: `https://api.example.com` or `https://example.com/api`. */
export interface ExternalOrigin {
  /** scheme://host[:port], normalized. */
  origin: string;
  /** A path prefix the front proxy strips before Envoy sees the request ("" for none), no trailing "/". */
  pathPrefix: string;
}

/**
 * Parses a configured external origin. Throws an Error that names the config path and says what
 * to write, for the config loader to report.
 */
export function parseExternalOrigin(value: string, configPath = 'credentials.dpop.external_origin'): ExternalOrigin {
  const fail = (why: string): never => {
    throw new Error(
      `${configPath}: ${JSON.stringify(value.slice(0, 200))} ${why}; write the origin clients call, e.g. https://api.example.com (optionally with the path prefix your front proxy strips, e.g. https://example.com/api)`,
    );
  };
  if (!URI_CHARS.test(value)) fail('contains a space, a control or non-ASCII character, or "\\"');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail('is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail('is not an http or https URL');
  if (url.username !== '' || url.password !== '') fail('carries userinfo');
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#'))
    fail('has a query or a fragment');
  const normalized = normalizeHtu(value);
  if (normalized === undefined) return fail('is not a valid origin');
  const origin = `${url.protocol}//${url.host}`;
  const pathPrefix = normalized.slice(origin.length).replace(/\/+$/, '');
  return { origin, pathPrefix };
}

/** What `credentials.dpop.external_origin` compiles to. */
export type HtuOrigins =
  | { kind: 'request' }
  | { kind: 'fixed'; origin: ExternalOrigin }
  | { kind: 'per-authority'; byAuthority: ReadonlyMap<string, ExternalOrigin> };

// reg-name of letters, digits, "-", ".", "_", "~", or an IPv6 literal; an optional port.
const AUTHORITY = /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** Lower case, one trailing dot of the host removed: the form authorities are looked up in. */
function authorityKey(authority: string): string {
  const lower = authority.toLowerCase();
  const colon = lower.startsWith('[') ? lower.indexOf(':', lower.indexOf(']')) : lower.lastIndexOf(':');
  const host = colon === -1 ? lower : lower.slice(0, colon);
  const port = colon === -1 ? '' : lower.slice(colon);
  return (host.endsWith('.') ? host.slice(0, -1) : host) + port;
}

/**
 * Compiles `external_origin`: absent (Envoy's scheme and authority are what the client called),
 * one origin for every request, or a map from the authority Envoy sees (`host` or `host:port`) to
 * the origin clients call; an authority not in the map keeps Envoy's scheme and authority.
 */
export function compileHtuOrigins(
  config: string | Readonly<Record<string, string>> | undefined,
  configPath = 'credentials.dpop.external_origin',
): HtuOrigins {
  if (config === undefined) return { kind: 'request' };
  if (typeof config === 'string') return { kind: 'fixed', origin: parseExternalOrigin(config, configPath) };
  const byAuthority = new Map<string, ExternalOrigin>();
  for (const [authority, origin] of Object.entries(config)) {
    if (!AUTHORITY.test(authority))
      throw new Error(
        `${configPath}: key ${JSON.stringify(authority.slice(0, 200))} is not an authority; write the host (and port) Envoy sees in :authority, e.g. api.internal:8080`,
      );
    const key = authorityKey(authority);
    if (byAuthority.has(key)) throw new Error(`${configPath}: authority ${JSON.stringify(key)} is listed twice`);
    byAuthority.set(key, parseExternalOrigin(origin, `${configPath}.${authority}`));
  }
  return { kind: 'per-authority', byAuthority };
}

/** The parts of the request Envoy sends (CheckRequest attributes.request.http). */
export interface HtuRequest {
  /** `:scheme` (http.scheme). */
  scheme: string;
  /** `:authority` (http.host). */
  authority: string;
  /** `:path` (http.path), query included. */
  path: string;
}

/**
 * The normalized htu of the request, or undefined when it cannot be rebuilt (a path that is not
 * origin-form, an authority or scheme that is not valid): the proof's htu then cannot match.
 */
export function requestHtu(req: HtuRequest, origins: HtuOrigins): string | undefined {
  let path = req.path;
  const cut = path.search(/[?#]/);
  if (cut !== -1) path = path.slice(0, cut);
  if (path.charCodeAt(0) !== 47 /* / */) return undefined;

  let base: string;
  let external: ExternalOrigin | undefined;
  if (origins.kind === 'fixed') external = origins.origin;
  else if (origins.kind === 'per-authority' && AUTHORITY.test(req.authority))
    external = origins.byAuthority.get(authorityKey(req.authority));
  if (external) {
    base = external.origin + external.pathPrefix;
  } else {
    const scheme = req.scheme.toLowerCase();
    if (scheme !== 'https' && scheme !== 'http') return undefined;
    if (!AUTHORITY.test(req.authority)) return undefined;
    base = `${scheme}://${req.authority}`;
  }
  return normalizeHtu(base + path);
}
