// credentials.introspection -> the `introspect` dependency decide() calls for opaque tokens.
import { readFileSync } from 'node:fs';
import type { CredentialVerifier } from '../../core/deps.ts';
import type { Identity } from '../../core/types.ts';
import { checkClaims as boundClaims } from '../../policy/claims.ts';
import { newIdentity } from '../../core/identity.ts';
import { DENY_REASONS, isDenyReason, type InvalidTokenReason } from '../../core/reasons.ts';
import type { IntrospectionConfig } from '../../policy/schema.ts';
import type { ComponentContext } from '../../plumbing/component.ts';
import { redactUrl } from '../../plumbing/redact-url.ts';
import { Admission } from './admission.ts';
import { IntrospectionCache } from './cache.ts';
import { IntrospectionClient } from './client.ts';
import { Introspector, type RemoteAnswers } from './introspector.ts';
import type { RedisConnection } from '../../stores/redis/connection.ts';
import { RedisSharedCache } from '../../stores/redis/cache.ts';
import type { CachedAnswer } from './cache.ts';
import { introspectionMetrics } from './metrics.ts';

export interface IntrospectionComponent {
  verifier: CredentialVerifier;
  introspect(token: string): Promise<Identity>;
  close(): void;
}

// The cache outlives a config reload when nothing that shaped its answers changed, so a reload
// during an authorization-server outage does not turn every cached token into a 503.
// One cache per config folder: a reload replaces the entry, so old caches are not kept.
const caches = new Map<string, { fingerprint: string; cache: IntrospectionCache }>();

function answerFingerprint(cfg: IntrospectionConfig): string {
  const {
    endpoint,
    client_id,
    issuer,
    audiences,
    allow_any_audience,
    require_audience,
    require_token_type,
    access_token_types,
    clock_skew_seconds,
    cache,
  } = cfg;
  return JSON.stringify({
    endpoint,
    client_id,
    issuer,
    audiences,
    allow_any_audience,
    require_audience,
    require_token_type,
    access_token_types,
    clock_skew_seconds,
    cache,
  });
}

export function createIntrospection(
  cfg: IntrospectionConfig,
  opts: ComponentContext & { cacheScope?: string; redis?: RedisConnection },
): IntrospectionComponent {
  const where = 'credentials.introspection';
  let ca: string | undefined;
  if (cfg.ca_file) {
    const file = opts.resolvePath(cfg.ca_file);
    try {
      ca = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`${where}.ca_file: cannot read ${file}: ${(e as Error).message}`, { cause: e });
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
    remote: opts.redis ? redisAnswers(opts.redis) : undefined,
    rules: {
      issuer: cfg.issuer,
      // The schema has made sure one of the two is said: audiences, or allow_any_audience.
      audiences: cfg.allow_any_audience ? undefined : cfg.audiences,
      requireAudience: cfg.require_audience,
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
    {
      endpoint: redactUrl(cfg.endpoint),
      auth_method: cfg.auth_method,
      timeout_ms: cfg.timeout_ms,
      max_ttl_seconds: cfg.cache.max_ttl_seconds,
    },
    'introspection configured for opaque tokens',
  );
  const introspect = (token: string) => introspector.introspect(token);
  return { verifier: { verify: introspect }, introspect, close: () => client.close() };
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

/** A shared answer may cost at most this much of the Check's 200 ms before it counts as a miss. */
const REMOTE_BUDGET_MS = 25;

interface SharedAnswer {
  a: 0 | 1;
  /** rejected: the reason */
  r?: string;
  /** active: subject, client_id, scopes, issuer, exp */
  s?: string;
  c?: string;
  sc?: string[];
  i?: string;
  x?: number;
  /** active: the answer's members (identity.claims), bounded again when read back */
  cl?: Record<string, unknown>;
}

const optString = (v: unknown): v is string | undefined => v === undefined || typeof v === 'string';

/** Replicas share answers through Redis (namespace "introspection"), keyed by the token's SHA-256. */
function redisAnswers(redis: RedisConnection): RemoteAnswers {
  const remote = new RedisSharedCache<SharedAnswer>(redis, 'introspection');
  return {
    async get(key) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), REMOTE_BUDGET_MS)));
      const entry = await Promise.race([remote.getEntry(key), late]);
      clearTimeout(timer);
      if (!entry) return undefined;
      const v = entry.v;
      // Another replica's reason, read back from Redis: only a catalog reason of the invalid_token class.
      if (v?.a === 0)
        return isDenyReason(v.r) && DENY_REASONS[v.r].error === 'invalid_token'
          ? { active: false, reason: v.r as InvalidTokenReason, until: entry.e }
          : undefined;
      if (v?.a !== 1 || !Array.isArray(v.sc) || !v.sc.every((x) => typeof x === 'string')) return undefined;
      if (!optString(v.s) || !optString(v.c) || !optString(v.i) || !(v.x === undefined || Number.isFinite(v.x)))
        return undefined;
      // Claims written by another replica were bounded there; bounded again here, as anything read
      // from Redis is checked, not trusted by shape.
      if (v.cl !== undefined && !boundClaims(v.cl).ok) return undefined;
      let identity;
      try {
        identity = newIdentity('oauth2', {
          subject: v.s,
          clientId: v.c,
          scopes: v.sc,
          issuer: v.i,
          expiresAt: v.x,
          claims: v.cl,
        });
      } catch {
        return undefined; // not an identity (a value with no UTF-8 form): a miss, never a throw
      }
      return { active: true, identity, until: entry.e } satisfies CachedAnswer;
    },
    set(key, answer) {
      const v: SharedAnswer = answer.active
        ? {
            a: 1,
            s: answer.identity.subject,
            c: answer.identity.clientId,
            sc: [...answer.identity.scopes],
            i: answer.identity.issuer,
            x: answer.identity.expiresAt,
            cl: answer.identity.claims,
          }
        : { a: 0, r: answer.reason };
      void remote.setEntry(key, { e: answer.until, v });
    },
  };
}
