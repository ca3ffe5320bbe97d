// A protected resource's identifier (RFC 9728 §1.2, RFC 8707 §2): what a valid one looks like,
// where its metadata lives (RFC 9728 §3.1), and whether a token's audience names it.
import { normalizeHost } from '../core/host.ts';

/** RFC 9728 §3: the default well-known URI string. */
export const WELL_KNOWN_PREFIX = '/.well-known/oauth-protected-resource';

/**
 * Why `value` cannot be a resource identifier here, or undefined when it can. The identifier is
 * used verbatim (in the metadata, in challenges, compared to `aud`), so it must be written in the
 * form clients will send: lower-case scheme and host, no default port, no dot segments, path
 * percent-encoded as WHATWG URL writes it. A query is refused although RFC 8707 §2 only says
 * SHOULD NOT: its metadata URL would need the query too, which no path route can match.
 */
export function resourceIdentifierIssue(value: string, allowHttp = false): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:')) {
    return 'must be an https URL (RFC 9728 §1.2); http only with allow_http: true, for local development';
  }
  if (u.username || u.password) return 'must not carry a user name or password';
  if (value.includes('#')) return 'must not have a fragment (RFC 8707 §2)';
  if (value.includes('?'))
    return 'must not have a query: its metadata URL could not be routed by path (RFC 8707 §2 advises against one too)';
  const canonical = canonicalForm(u);
  if (value !== canonical && value !== `${canonical}/`) {
    return `must be written as clients send it: "${canonical}" (lower-case scheme and host, no default port, no "." or ".." segments, percent-encoded path)`;
  }
  return undefined;
}

function canonicalForm(u: URL): string {
  // The root form without a slash is what RFC 9728 §3.1 and MCP write (`https://mcp.example.com`).
  return u.pathname === '/' ? `${u.protocol}//${u.host}` : `${u.protocol}//${u.host}${u.pathname}`;
}

export interface ResourceLocation {
  /** `scheme://authority` exactly as in the identifier. */
  origin: string;
  /** The host a request for the metadata names (normalizeHost: lower case, no port). */
  hostKey: string;
  /** Where RFC 9728 §3.1 puts the metadata: the well-known string, then the path without a terminating slash. */
  wellKnownPath: string;
  /**
   * Every path the metadata is answered at: wellKnownPath, and for a path ending in "/" also that path
   * with its slash.
   */
  wellKnownPaths: string[];
  /** The `resource_metadata` URL for challenges (RFC 9728 §5.1). */
  metadataUrl: string;
}

/**
 * Where the metadata of a valid identifier (resourceIdentifierIssue passed) is served.
 *   https://api.example.com       -> /.well-known/oauth-protected-resource
 *   https://api.example.com/mcp   -> /.well-known/oauth-protected-resource/mcp
 * RFC 9728 §3.1 removes "any terminating slash" before inserting the well-known string; read as the
 * slash ending the identifier (as RFC 8414 §3.1 is usually read), `https://api.example.com/mcp/`
 * gives `.../mcp`. The form keeping that slash is answered too, so a client reading it the other way
 * finds the document as well.
 */
export function resourceLocation(resource: string): ResourceLocation {
  const u = new URL(resource);
  const origin = `${u.protocol}//${u.host}`;
  const path = u.pathname === '/' ? '' : u.pathname;
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  const wellKnownPath = WELL_KNOWN_PREFIX + trimmed;
  const wellKnownPaths = trimmed === path ? [wellKnownPath] : [wellKnownPath, WELL_KNOWN_PREFIX + path];
  return {
    origin,
    hostKey: normalizeHost(u.host) ?? u.hostname,
    wellKnownPath,
    wellKnownPaths,
    metadataUrl: origin + wellKnownPath,
  };
}

/**
 * Whether a token's audience (`aud` claim, or an introspection answer's `aud`: a string or an
 * array of strings, RFC 7519 §4.1.3, RFC 7662 §2.2) names `resource`, a canonical identifier.
 *
 * Compared as strings (RFC 7519 §4.1.3: "case-sensitive strings with no transformations or
 * canonicalizations"; RFC 9728 §6: code-point equality), with one exception: the scheme and host
 * may differ in ASCII case, because they are case-insensitive by definition (RFC 3986 §3.1, §3.2.2)
 * and the MCP authorization spec asks resource servers to accept upper-case ones. Nothing else is
 * forgiven: not a trailing slash (`/mcp/` and `/mcp` can be different resources), not a default
 * port, not percent-encoding or dot segments. A token whose audience is the whole API
 * (`https://api.example.com`) does not name `https://api.example.com/mcp`.
 */
export function audienceMatchesResource(aud: unknown, resource: string): boolean {
  if (typeof aud === 'string') return sameIdentifier(aud, resource);
  if (Array.isArray(aud)) {
    for (const a of aud) if (typeof a === 'string' && sameIdentifier(a, resource)) return true;
  }
  return false;
}

function sameIdentifier(aud: string, resource: string): boolean {
  if (aud === resource) return true;
  if (aud.length !== resource.length) return false;
  const end = authorityEnd(resource);
  if (authorityEnd(aud) !== end) return false;
  for (let i = 0; i < end; i++) {
    let c = aud.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== resource.charCodeAt(i)) return false;
  }
  return aud.slice(end) === resource.slice(end);
}

/** Index just past `scheme://authority`. */
function authorityEnd(s: string): number {
  const start = s.indexOf('://');
  if (start < 0) return 0;
  const slash = s.indexOf('/', start + 3);
  return slash < 0 ? s.length : slash;
}
