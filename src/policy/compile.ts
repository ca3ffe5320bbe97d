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
  sourceIpHeader?: string;
}

export function compilePolicy(config: Config): Policy {
  const apiKey = config.credentials.api_key;
  return {
    realm: config.realm,
    routes: new RouteTable(config.routes),
    headers: new HeaderPolicy(config.headers),
    extract: {
      apiKeyHeaders: apiKey?.headers ?? [],
      apiKeyQueryParam: apiKey?.query_param ?? null,
      apiKeyPrefix: apiKey?.prefix ?? null,
    },
    credentialHeaders: ['authorization', ...(apiKey?.headers ?? [])],
    rateLimits: new Map(config.rate_limits.map((r) => [r.name, r])),
    maxCredentialBytes: config.credentials.max_credential_bytes,
    sourceIpHeader: config.source_ip_header,
  };
}
