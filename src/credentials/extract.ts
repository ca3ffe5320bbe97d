// Finding the one credential a request carries, and what kind it is. No verification here.
// Token routing (DESIGN "Tokens"): JWT-shaped -> jwt only; API-key-shaped -> key store only;
// anything else -> introspection. Never a fallback from one to another.
import { looksLikeApiKey } from './apikey-format.ts';
import type { QueryScan } from '../core/query.ts';
import type { CredentialKind } from '../core/types.ts';

export type Extracted =
  | { kind: 'none' }
  | { kind: 'malformed'; reason: string }
  | { kind: CredentialKind; value: string; header?: string; queryParam?: string };

export interface ExtractOptions {
  apiKeyHeaders: readonly string[];
  apiKeyQueryParam: string | null;
  apiKeyPrefix: string | null;
}

// RFC 6750 §2.1 b64token.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const JWE_SHAPE = /^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/;

export function classifyBearer(token: string, apiKeyPrefix: string | null): CredentialKind {
  if (JWS_SHAPE.test(token) || JWE_SHAPE.test(token)) return 'jwt';
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
