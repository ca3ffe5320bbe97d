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

// The cache outlives a config reload when nothing that shaped its answers changed, so a reload
// during an authorization-server outage does not turn every cached token into a 503.
// One cache per config folder: a reload replaces the entry, so old caches are not kept.
const caches = new Map<string, { fingerprint: string; cache: IntrospectionCache }>();

function answerFingerprint(cfg: IntrospectionConfig): string {
  const { endpoint, client_id, issuer, audiences, require_token_type, access_token_types, clock_skew_seconds, cache } = cfg;
  return JSON.stringify({ endpoint, client_id, issuer, audiences, require_token_type, access_token_types, clock_skew_seconds, cache });
}

export function createIntrospection(
  cfg: IntrospectionConfig,
  opts: { log: Logger; registry: Registry; now: () => number; resolvePath: (p: string) => string; cacheScope?: string },
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
    cache: cacheFor(cfg, opts.now, opts.cacheScope),
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

function cacheFor(cfg: IntrospectionConfig, now: () => number, scope: string | undefined): IntrospectionCache {
  const fingerprint = answerFingerprint(cfg);
  const prior = scope === undefined ? undefined : caches.get(scope);
  if (prior && prior.fingerprint === fingerprint) return prior.cache;
  const cache = new IntrospectionCache(
    {
      maxEntries: cfg.cache.max_entries,
      negativeMaxEntries: cfg.cache.negative_max_entries,
      maxTtlSeconds: cfg.cache.max_ttl_seconds,
      negativeTtlSeconds: cfg.cache.negative_ttl_seconds,
    },
    now,
  );
  if (scope !== undefined) caches.set(scope, { fingerprint, cache });
  return cache;
}
