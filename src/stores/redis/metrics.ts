// Metrics for the Redis-backed stores and the rate limiter. Components are rebuilt on every config
// reload, so each metric is fetched from the registry when it already exists (prom-client throws
// on a second registration of the same name).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { HotCounter, registeredMetric as getOrCreate } from '../../plumbing/metrics.ts';

export interface RedisMetrics {
  commandDuration: Histogram<'op'>;
  commandErrors: Counter<'op' | 'kind'>;
  up: Gauge;
  keyStoreLastSync: Gauge;
  keyStoreSyncs: Counter<'result'>;
}

export function redisMetrics(registry: Registry): RedisMetrics {
  const registers = [registry];
  return {
    commandDuration: getOrCreate(
      registry,
      'portcullis_redis_command_duration_seconds',
      () =>
        new Histogram({
          name: 'portcullis_redis_command_duration_seconds',
          help: 'Redis round trips by operation (ratelimit, keystore_load, keystore_get, keystore_put, cache_get, cache_set, version), in seconds',
          labelNames: ['op'],
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
          registers,
        }),
    ),
    commandErrors: getOrCreate(
      registry,
      'portcullis_redis_command_errors_total',
      () =>
        new Counter({
          name: 'portcullis_redis_command_errors_total',
          help: 'Redis operations that failed, by operation and kind (unavailable: not connected; timeout: redis.command_timeout_ms passed; error: Redis answered an error)',
          labelNames: ['op', 'kind'],
          registers,
        }),
    ),
    up: getOrCreate(
      registry,
      'portcullis_redis_up',
      () =>
        new Gauge({
          name: 'portcullis_redis_up',
          help: '1 while the Redis connection is ready, 0 while it is down and reconnecting',
          registers,
        }),
    ),
    keyStoreLastSync: getOrCreate(
      registry,
      'portcullis_keystore_last_sync_timestamp_seconds',
      () =>
        new Gauge({
          name: 'portcullis_keystore_last_sync_timestamp_seconds',
          help: 'When the local copy of the Redis key store was last confirmed current (unix seconds)',
          registers,
        }),
    ),
    keyStoreSyncs: getOrCreate(
      registry,
      'portcullis_keystore_syncs_total',
      () =>
        new Counter({
          name: 'portcullis_keystore_syncs_total',
          help: 'Redis key store synchronisations by result (full: whole copy reloaded; change: one record applied from pub/sub; unchanged: version check only; failed)',
          labelNames: ['result'],
          registers,
        }),
    ),
  };
}

export interface RateLimitMetrics {
  /** Counted on every Check of a rate-limited route: hot children. */
  decisions: HotCounter<'policy' | 'result'>;
  failOpen: Counter<'policy'>;
  overflow: Counter<'policy'>;
}

export function rateLimitMetrics(registry: Registry): RateLimitMetrics {
  const registers = [registry];
  return {
    decisions: HotCounter.in(registry, {
      name: 'portcullis_ratelimit_decisions_total',
      help: 'Rate-limit checks by policy and result (allowed, limited, error: the limiter backend failed)',
      labelNames: ['policy', 'result'],
    }),
    failOpen: getOrCreate(
      registry,
      'portcullis_ratelimit_failopen_total',
      () =>
        new Counter({
          name: 'portcullis_ratelimit_failopen_total',
          help: 'Requests let through unlimited because the limiter failed and the policy says on_redis_error: allow',
          labelNames: ['policy'],
          registers,
        }),
    ),
    overflow: getOrCreate(
      registry,
      'portcullis_ratelimit_overflow_total',
      () =>
        new Counter({
          name: 'portcullis_ratelimit_overflow_total',
          help: 'In-memory limiter: requests of new keys counted in the shared overflow budget because the window already held rate_limits[].max_keys keys',
          labelNames: ['policy'],
          registers,
        }),
    ),
  };
}
