// A validated Config turned into what the hot path reads: compiled once, at load or reload.
import type { CompiledPolicy } from '../core/policy.ts';
import type { ClaimHeaderSkip } from './claims.ts';
import { compileResourceGuards } from '../resources/guards.ts';
import { HeaderPolicy } from './headers.ts';
import { RouteTable } from './routes.ts';
import type { Config } from './schema.ts';

/** The compiled policy: the core's view (src/core/policy.ts), built here from the config. */
export type Policy = CompiledPolicy;

/** RFC 6750 §2.3: the one query parameter name a bearer token travels in. */
export const ACCESS_TOKEN_PARAM = 'access_token';

export interface PolicyHooks {
  /** A header from a claim left unset (HeaderPolicy.onClaimHeaderSkipped): the runtime counts it. */
  onClaimHeaderSkipped?: (header: string, why: ClaimHeaderSkip) => void;
}

export function compilePolicy(config: Config, hooks: PolicyHooks = {}): Policy {
  const apiKey = config.credentials.api_key;
  const headers = new HeaderPolicy(config.headers);
  headers.onClaimHeaderSkipped = hooks.onClaimHeaderSkipped;
  // The DPoP proof is for this hop: spent here (its jti), it means nothing to the upstream.
  const credentialHeaders = ['authorization', ...(apiKey?.headers ?? []), ...(config.credentials.dpop ? ['dpop'] : [])];
  return {
    realm: config.realm,
    routes: new RouteTable(config.routes),
    headers,
    extract: {
      apiKeyHeaders: apiKey?.headers ?? [],
      apiKeyQueryParam: apiKey?.query_param?.toLowerCase() ?? null,
      apiKeyPrefix: apiKey?.prefix ?? null,
      dpop: config.credentials.dpop !== undefined,
      clientCertificateHeader: clientCertificateHeader(config.credentials.client_certificate),
    },
    credentialHeaders,
    rateLimits: new Map(config.rate_limits.map((r) => [r.name, r])),
    maxCredentialBytes: config.credentials.max_credential_bytes,
    sourceIp: sourceIpOption(config.source_ip_header),
    queryCredentialNames: [
      ...new Set([ACCESS_TOKEN_PARAM, ...(apiKey?.query_param ? [apiKey.query_param.toLowerCase()] : [])]),
    ],
    resources: compileResourceGuards(config.routes, config.protected_resources, {
      credentialHeaders,
      apiKeyPrefix: apiKey?.prefix ?? null,
    }),
  };
}

function sourceIpOption(o: Config['source_ip_header']): CompiledPolicy['sourceIp'] {
  if (o === undefined) return undefined;
  return typeof o === 'string' ? { header: o, trustedHops: 0 } : { header: o.name, trustedHops: o.trusted_hops };
}

function clientCertificateHeader(c: Config['credentials']['client_certificate']): string | undefined {
  if (c.source === 'envoy') return undefined;
  return c.header ?? (c.source === 'xfcc' ? 'x-forwarded-client-cert' : 'client-cert');
}
