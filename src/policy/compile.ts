// A validated Config turned into what the hot path reads: compiled once, at load or reload.
import type { ExtractOptions } from '../credentials/extract.ts';
import { HeaderPolicy } from './headers.ts';
import { RouteTable } from './routes.ts';
import type { Config, RateLimitConfig } from './schema.ts';

export interface Policy {
  realm: string;
  routes: RouteTable;
  headers: HeaderPolicy;
  extract: ExtractOptions;
  /** Headers that carry credentials: removed before the upstream unless forward_credentials. */
  credentialHeaders: string[];
  rateLimits: ReadonlyMap<string, RateLimitConfig>;
  maxCredentialBytes: number;
  /** source_ip_header: where the client address is read, and how many appending proxies to skip. */
  sourceIp?: { header: string; trustedHops: number };
  /** Query parameters that carry a credential (lower case): RFC 6750 access_token, the API-key parameter. */
  queryCredentialNames: readonly string[];
}

/** RFC 6750 §2.3: the one query parameter name a bearer token travels in. */
export const ACCESS_TOKEN_PARAM = 'access_token';

export function compilePolicy(config: Config): Policy {
  const apiKey = config.credentials.api_key;
  return {
    realm: config.realm,
    routes: new RouteTable(config.routes),
    headers: new HeaderPolicy(config.headers),
    extract: {
      apiKeyHeaders: apiKey?.headers ?? [],
      apiKeyQueryParam: apiKey?.query_param?.toLowerCase() ?? null,
      apiKeyPrefix: apiKey?.prefix ?? null,
    },
    credentialHeaders: ['authorization', ...(apiKey?.headers ?? [])],
    rateLimits: new Map(config.rate_limits.map((r) => [r.name, r])),
    maxCredentialBytes: config.credentials.max_credential_bytes,
    sourceIp: sourceIpOption(config.source_ip_header),
    queryCredentialNames: [...new Set([ACCESS_TOKEN_PARAM, ...(apiKey?.query_param ? [apiKey.query_param.toLowerCase()] : [])])],
  };
}

function sourceIpOption(o: Config['source_ip_header']): Policy['sourceIp'] {
  if (o === undefined) return undefined;
  return typeof o === 'string' ? { header: o, trustedHops: 0 } : { header: o.name, trustedHops: o.trusted_hops };
}
