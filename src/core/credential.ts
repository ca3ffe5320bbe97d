// Finding the one credential a request carries, and what kind it is. No verification here.
// Token routing (docs/security.md): JWT-shaped -> jwt only; API-key-shaped -> key store only;
// anything else -> introspection. Never a fallback from one to another.
import type { QueryScan } from './query.ts';
import type { InvalidRequestReason } from './reasons.ts';
import type { AuthzRequest, CredentialKind } from './types.ts';

export type Extracted =
  | { kind: 'none' }
  | { kind: 'malformed'; reason: InvalidRequestReason }
  | {
      kind: CredentialKind;
      value: string;
      header?: string;
      queryParam?: string;
      /** `Authorization: DPoP <token>` (RFC 9449, §7.1): the token must come with a proof. */
      dpop?: true;
    };

export interface ExtractOptions {
  apiKeyHeaders: readonly string[];
  apiKeyQueryParam: string | null;
  apiKeyPrefix: string | null;
  /** credentials.dpop is configured: `Authorization: DPoP <token>` is a credential. */
  dpop?: boolean;
  /**
   * credentials.client_certificate: the header a trusted proxy writes the client certificate in
   * (XFCC, Client-Cert); undefined: Envoy's own `source.certificate`.
   */
  clientCertificateHeader?: string;
}

// RFC 6750 §2.1 b64token.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Whether a bearer token is JWT-shaped: then it is a JWT or nothing, and never goes to
 * introspection, where it would hand another issuer's token to our authorization server (and a
 * server that introspects JWTs would be a fallback around every JWT rule). Deliberately wider than
 * a valid compact JWS, so that near-misses (`<jwt>=`, `h.p`, `h.p.s.`, `h.p.s.x`, `+/` instead of
 * `-_`, dots stripped) are JWTs that fail, not opaque tokens:
 *   - two or more dots anywhere (JWS has two, JWE four); or
 *   - starts with `eyJ` (base64url of `{"`: a JOSE header) and has a dot; or
 *   - starts with `eyJ`, no dot, and its first 20 characters decode to printable ASCII (a JOSE
 *     header on its own, or a JWT with its dots removed).
 * Opaque tokens from real servers are random base64url (no dots) or carry one dot (Ory Hydra's
 * `ory_at_….…`, Google's `ya29.…`): none of them is taken for a JWT. A random base64url token
 * passes the last test about once in 10 billion (1/64³ for `eyJ`, then the next 12 bytes all
 * printable, about 1 in 50,000).
 */
export function looksLikeJwt(token: string): boolean {
  const first = token.indexOf('.');
  if (first !== -1 && token.indexOf('.', first + 1) !== -1) return true;
  if (!token.startsWith('eyJ')) return false;
  if (first !== -1) return true;
  // The shortest JOSE header, {"alg":"ES256"}, is 20 characters: enough to judge.
  if (token.length < 20) return false;
  const head = Buffer.from(token.slice(0, 20), 'base64');
  for (const b of head) if (b < 0x20 || b > 0x7e) return false;
  return true;
}

/**
 * The shape of an API key, `<prefix>_` and 38 characters (32 random, 6 of checksum: the format is
 * src/credentials/api-key/format.ts). The shape alone routes a bearer token to the key store; the
 * checksum is the verifier's first check.
 */
export const API_KEY_BODY_LENGTH = 38;

/** True if the string has the shape of a key with this prefix (checksum not verified). */
export function looksLikeApiKey(value: string, prefix: string): boolean {
  return value.length === prefix.length + 1 + API_KEY_BODY_LENGTH && value.startsWith(prefix + '_');
}

export function classifyBearer(token: string, apiKeyPrefix: string | null): CredentialKind {
  if (looksLikeJwt(token)) return 'jwt';
  if (apiKeyPrefix && looksLikeApiKey(token, apiKeyPrefix)) return 'api-key';
  return 'oauth2';
}

/**
 * The one credential a request carries. `query` holds the credential-named query parameters
 * (scanQuery): the API-key parameter when configured, and RFC 6750 `access_token`, which is never
 * accepted (tokens in URLs end up in logs and histories; OAuth 2.1 drops the method) but still
 * counts as a credential, so that a header plus `?access_token=` is two credentials.
 */
export function extractCredential(headers: Record<string, string>, query: QueryScan, opts: ExtractOptions): Extracted {
  const found: Exclude<Extracted, { kind: 'none' } | { kind: 'malformed' }>[] = [];

  const authz = headers['authorization'];
  if (authz !== undefined) {
    // Envoy joins repeated headers with ","; no valid credential contains one.
    if (authz.includes(',')) return { kind: 'malformed', reason: 'authorization_repeated' };
    const value = authz.trim();
    const sp = value.indexOf(' ');
    const scheme = (sp === -1 ? value : value.slice(0, sp)).toLowerCase();
    const param = sp === -1 ? '' : value.slice(sp + 1).replace(/^ +/, '');
    if (scheme === 'bearer') {
      if (param === '') return { kind: 'malformed', reason: 'bearer_empty' };
      if (!B64TOKEN.test(param)) return { kind: 'malformed', reason: 'bearer_syntax' };
      found.push({ kind: classifyBearer(param, opts.apiKeyPrefix), value: param, header: 'authorization' });
    } else if (scheme === 'dpop' && opts.dpop) {
      // The same token68 as Bearer (RFC 9449, §7.1); what it is follows from its shape, as for Bearer.
      if (param === '') return { kind: 'malformed', reason: 'dpop_token_empty' };
      if (!B64TOKEN.test(param)) return { kind: 'malformed', reason: 'dpop_token_syntax' };
      found.push({ kind: classifyBearer(param, opts.apiKeyPrefix), value: param, header: 'authorization', dpop: true });
    } else if (scheme === 'apikey' && opts.apiKeyPrefix) {
      if (param === '' || param.includes(' ')) return { kind: 'malformed', reason: 'apikey_syntax' };
      found.push({ kind: 'api-key', value: param, header: 'authorization' });
    } else if (value === '') {
      return { kind: 'malformed', reason: 'authorization_empty' };
    } else {
      return { kind: 'malformed', reason: 'authorization_scheme_unsupported' };
    }
  }

  for (const h of opts.apiKeyHeaders) {
    const v = headers[h];
    if (v === undefined) continue;
    if (v.includes(',')) return { kind: 'malformed', reason: 'api_key_header_repeated' };
    const key = v.trim();
    if (key === '') return { kind: 'malformed', reason: 'api_key_empty' };
    found.push({ kind: 'api-key', value: key, header: h });
  }

  let apiKeyParams = 0;
  let accessTokens = 0;
  for (const q of query.credentials) {
    if (q.name !== opts.apiKeyQueryParam) {
      accessTokens++;
      continue;
    }
    if (++apiKeyParams > 1) return { kind: 'malformed', reason: 'api_key_query_repeated' };
    if (q.value === undefined) return { kind: 'malformed', reason: 'query_bad_escape' };
    if (q.value === '') return { kind: 'malformed', reason: 'api_key_empty' };
    found.push({ kind: 'api-key', value: q.value, queryParam: q.rawName });
  }

  // A credential in more than one place, whatever the places (RFC 6750 §2: one method per request).
  if (found.length + accessTokens > 1) return { kind: 'malformed', reason: 'multiple_credentials' };
  if (accessTokens > 0) return { kind: 'malformed', reason: 'access_token_in_query' };
  if (found.length === 0) return { kind: 'none' };
  return found[0];
}

/**
 * The client certificate as the credential (the `mtls` kind), when the request carries one where
 * credentials.client_certificate says to look; the verifier reads and checks it.
 */
export function clientCertificateCredential(req: AuthzRequest, opts: ExtractOptions): Extracted {
  const present =
    opts.clientCertificateHeader === undefined
      ? req.peerCertificate !== undefined
      : req.headers[opts.clientCertificateHeader] !== undefined;
  return present ? { kind: 'mtls', value: '' } : { kind: 'none' };
}
