// credentials.introspection -> the `introspect` dependency decide() calls for opaque tokens.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Identity } from '../../core/types.ts';
import type { IntrospectionConfig } from '../../policy/schema.ts';
import { Admission } from './admission.ts';
import { IntrospectionCache } from './cache.ts';
import { IntrospectionClient } from './client.ts';
import { Introspector } from './introspector.ts';
import { introspectionMetrics } from './metrics.ts';

export interface IntrospectionComponent {
  introspect(token: string): Promise<Identity>;
  close(): void;
}

export function createIntrospection(
  cfg: IntrospectionConfig,
  opts: { log: Logger; registry: Registry; now: () => number; resolvePath: (p: string) => string },
): IntrospectionComponent {
  const where = 'credentials.introspection';
  let ca: string | undefined;
  if (cfg.ca_file) {
    const file = opts.resolvePath(cfg.ca_file);
    try {
      ca = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`${where}.ca_file: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const client = new IntrospectionClient({
    endpoint: cfg.endpoint,
    clientId: cfg.client_id,
    clientSecret: cfg.client_secret,
    authMethod: cfg.auth_method,
    timeoutMs: cfg.timeout_ms,
    ca,
    maxSockets: cfg.max_concurrency,
  });
  const introspector = new Introspector({
    call: (t) => client.introspect(t),
    rules: {
      issuer: cfg.issuer,
      audiences: cfg.audiences,
      requireTokenType: cfg.require_token_type,
      accessTokenTypes: new Set(cfg.access_token_types.map((t) => t.toLowerCase())),
      clockSkewSeconds: cfg.clock_skew_seconds,
    },
    cache: new IntrospectionCache(
      {
        maxEntries: cfg.cache.max_entries,
        negativeMaxEntries: cfg.cache.negative_max_entries,
        maxTtlSeconds: cfg.cache.max_ttl_seconds,
        negativeTtlSeconds: cfg.cache.negative_ttl_seconds,
      },
      opts.now,
    ),
    admission: new Admission(cfg.max_concurrency, cfg.max_per_second, opts.now),
    retryAfterSeconds: cfg.retry_after_seconds,
    now: opts.now,
    log: opts.log,
    metrics: introspectionMetrics(opts.registry),
    where,
  });
  opts.log.info(
    { endpoint: cfg.endpoint, auth_method: cfg.auth_method, timeout_ms: cfg.timeout_ms, max_ttl_seconds: cfg.cache.max_ttl_seconds },
    'introspection configured for opaque tokens',
  );
  return { introspect: (t) => introspector.introspect(t), close: () => client.close() };
}
