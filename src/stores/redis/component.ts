// Plugging Redis into the components of a config generation (src/runtime/components.ts):
// the shared connection, its readiness, the key store and the rate limiter.
import type { ComponentContext, ReadinessCheck } from '../../plumbing/component.ts';
import type { Config, RedisConfig } from '../../policy/schema.ts';
import { MemoryRateLimiter, type RateLimiter } from '../ratelimit.ts';
import { RedisConnection } from './connection.ts';
import { CountingRateLimiter } from './counting-limiter.ts';
import { RedisKeyStore } from './keystore.ts';
import { rateLimitMetrics, redisMetrics, type RateLimitMetrics } from './metrics.ts';
import { RedisRateLimiter } from './ratelimiter.ts';

type RedisStoreConfig = Extract<NonNullable<Config['credentials']['api_key']>['store'], { type: 'redis' }>;

export function createRedisConnection(
  config: RedisConfig,
  ctx: ComponentContext,
  name = 'portcullis',
): RedisConnection {
  return new RedisConnection(config, ctx.log.child({ component: 'redis' }), redisMetrics(ctx.registry), name);
}

/**
 * Not ready until the first connection. After that a lost connection does not make the service
 * unready (that would take every replica out of Envoy's pool at once while local copies can still
 * answer); /readyz lists it under `degraded` and portcullis_redis_up drops to 0.
 */
export function redisReadiness(conn: RedisConnection): ReadinessCheck & { degraded(): string | undefined } {
  return {
    name: 'redis',
    ready: () => conn.hasBeenReady(),
    detail: () => (conn.hasBeenReady() ? undefined : `connecting to ${conn.target}`),
    degraded: () =>
      conn.hasBeenReady() && !conn.isUp()
        ? `redis: connection to ${conn.target} lost, reconnecting; serving from local copies`
        : undefined,
  };
}

/**
 * The Redis key store. With `conn` (the server) it shares the components' connection; without
 * (the `portcullis keys` CLI) it opens its own and closes it with the store.
 */
export function createRedisKeyStore(
  redis: RedisConfig,
  store: RedisStoreConfig,
  ctx: ComponentContext,
  conn?: RedisConnection,
): RedisKeyStore {
  const own = !conn;
  const connection = conn ?? createRedisConnection(redis, ctx, 'portcullis-cli');
  return new RedisKeyStore(connection, {
    resyncSeconds: store.resync_seconds,
    log: ctx.log.child({ component: 'keystore' }),
    metrics: redisMetrics(ctx.registry),
    ownsConnection: own,
  });
}

// One in-memory limiter per process, shared by every config generation: a reload must not hand
// every client a fresh budget. (Redis-backed counts live in Redis and survive anyway.) Its overflow
// reports go to the newest generation's metrics and log.
let processMemoryLimiter: MemoryRateLimiter | undefined;
let reportOverflow: (policy: string) => void = () => {};

/** Redis-backed when the config has a redis section, in memory otherwise; counted either way. */
export function createRateLimiter(ctx: ComponentContext, conn?: RedisConnection): RateLimiter {
  const metrics = rateLimitMetrics(ctx.registry);
  let inner: RateLimiter;
  if (conn) inner = new RedisRateLimiter(conn);
  else {
    reportOverflow = overflowReporter(ctx, metrics);
    const memory = (processMemoryLimiter ??= new MemoryRateLimiter({ onOverflow: (policy) => reportOverflow(policy) }));
    inner = { hit: (policy, key, nowMs) => memory.hit(policy, key, nowMs), close: async () => {} };
  }
  return new CountingRateLimiter(inner, metrics);
}

function overflowReporter(ctx: ComponentContext, metrics: RateLimitMetrics): (policy: string) => void {
  const log = ctx.log.child({ component: 'ratelimit' });
  let lastLog = 0;
  return (policy) => {
    metrics.overflow.inc({ policy });
    const now = Date.now();
    if (now - lastLog > 10_000) {
      lastLog = now;
      log.warn(
        { policy },
        'rate limit window holds rate_limits[].max_keys keys: new keys share one overflow budget until the window ends. Raise max_keys, or use a redis section, if this is real traffic. See portcullis_ratelimit_overflow_total',
      );
    }
  };
}

/** DecideDeps.onRateLimiterError: counts a request let through by on_redis_error: allow (log throttled). */
export function rateLimiterFailOpen(ctx: ComponentContext): (policy: string, err: Error) => void {
  const metrics = rateLimitMetrics(ctx.registry);
  const log = ctx.log.child({ component: 'ratelimit' });
  let lastLog = 0;
  return (policy, err) => {
    metrics.failOpen.inc({ policy });
    const now = Date.now();
    if (now - lastLog > 10_000) {
      lastLog = now;
      log.warn(
        { policy, err: err.message },
        'rate limiter unavailable; requests pass unlimited (rate_limits[].on_redis_error: allow). See portcullis_ratelimit_failopen_total',
      );
    }
  };
}
