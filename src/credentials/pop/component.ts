// Builds the proof-of-possession checker of a config generation: the DPoP setup (credentials.dpop)
// with its replay cache (in memory, or shared through Redis when a redis section exists) and the
// client-certificate source (credentials.client_certificate). Always built: without
// credentials.dpop it still refuses a DPoP-bound token sent as Bearer and checks certificate-bound
// tokens against the certificate.
import { Counter, type Registry } from 'prom-client';
import type { ComponentContext } from '../../plumbing/component.ts';
import { registeredMetric } from '../../plumbing/metrics.ts';
import type { ClientCertificateConfig, Config, DpopConfig } from '../../policy/schema.ts';
import type { RedisConnection } from '../../stores/redis/connection.ts';
import { RedisReplayCache } from '../../stores/redis/replay-cache.ts';
import { MemoryReplayCache, type ReplayCache } from '../../stores/replay-cache.ts';
import type { CertificateSource } from './certificate.ts';
import { PopChecker, type DpopSetup } from './checker.ts';
import { compileHtuOrigins } from './htu.ts';
import { DpopNonces } from './nonce.ts';

function counter(registry: Registry, name: string, help: string): Counter {
  return registeredMetric(registry, name, () => new Counter({ name, help, registers: [registry] }));
}

// A replay cache outlives config reloads (per config folder and size): a reload must not make the
// proofs of the last max_age_seconds acceptable again.
const memoryCaches = new Map<string, MemoryReplayCache>();

export function certificateSource(c: ClientCertificateConfig): CertificateSource {
  switch (c.source) {
    case 'envoy':
      return { kind: 'envoy' };
    case 'xfcc':
      return { kind: 'xfcc', header: c.header, trustedHops: c.trusted_hops, by: c.by };
    case 'client-cert':
      return { kind: 'client-cert', header: c.header };
  }
}

function replayCache(
  d: DpopConfig,
  ctx: ComponentContext & { cacheScope: string },
  redis: RedisConnection | undefined,
): ReplayCache {
  const log = ctx.log.child({ component: 'dpop' });
  const evicted = counter(
    ctx.registry,
    'portcullis_dpop_replay_evicted_total',
    'DPoP proofs forgotten before they expired because credentials.dpop.replay_cache.max_entries was reached',
  );
  const key = `${ctx.cacheScope}\n${d.replay_cache.max_entries}`;
  let local = memoryCaches.get(key);
  if (!local) {
    let lastLog = 0;
    local = new MemoryReplayCache({
      maxEntries: d.replay_cache.max_entries,
      onEvictUnexpired() {
        evicted.inc();
        const now = Date.now();
        if (now - lastLog > 10_000) {
          lastLog = now;
          log.warn(
            'the DPoP replay cache is full: unexpired proofs are forgotten. Raise credentials.dpop.replay_cache.max_entries. See portcullis_dpop_replay_evicted_total',
          );
        }
      },
    });
    memoryCaches.set(key, local);
  }
  if (!redis) return local;
  const failOpen = counter(
    ctx.registry,
    'portcullis_dpop_replay_failopen_total',
    "DPoP proofs accepted on this replica's memory alone because Redis failed (credentials.dpop.on_redis_error: allow)",
  );
  let lastLog = 0;
  return new RedisReplayCache(redis, {
    onRedisError: d.on_redis_error,
    local,
    onFailOpen(err) {
      failOpen.inc();
      const now = Date.now();
      if (now - lastLog > 10_000) {
        lastLog = now;
        log.warn(
          { err: err.message },
          'DPoP replay cache: Redis unavailable; proofs are checked against this replica only (credentials.dpop.on_redis_error: allow). See portcullis_dpop_replay_failopen_total',
        );
      }
    },
  });
}

function dpopSetup(
  d: DpopConfig,
  ctx: ComponentContext & { cacheScope: string },
  redis: RedisConnection | undefined,
): DpopSetup {
  // A worker of `serve --workers` (src/cli/cluster.ts sets PORTCULLIS_WORKER): a replay cache in
  // this process alone would let a proof replayed to another worker through. The primary refuses
  // such a config at start; this catches it on a reload.
  if (!redis && process.env.PORTCULLIS_WORKER !== undefined)
    throw new Error(
      'credentials.dpop: with serve --workers the DPoP replay cache must be shared: add a redis section (docs/proof-of-possession.md)',
    );
  let nonces: DpopNonces | undefined;
  if (d.nonce === 'required') {
    nonces = new DpopNonces({ secret: d.nonce_secret, windowSeconds: d.nonce_window_seconds });
    if (nonces.generatedSecret)
      ctx.log.info(
        { component: 'dpop' },
        'credentials.dpop.nonce_secret is not set: this replica drew its own nonce secret; with several replicas set the same secret on each',
      );
  }
  return {
    policy: {
      algorithms: d.algorithms,
      maxAgeSeconds: d.max_age_seconds,
      clockSkewSeconds: d.clock_skew_seconds,
      maxProofBytes: d.max_proof_bytes,
      ...(nonces ? { nonces } : {}),
    },
    origins: compileHtuOrigins(d.external_origin),
    replay: replayCache(d, ctx, redis),
    ...(nonces ? { nonces } : {}),
  };
}

export function createPopChecker(
  config: Config,
  ctx: ComponentContext & { cacheScope: string },
  redis: RedisConnection | undefined,
): PopChecker {
  const d = config.credentials.dpop;
  return new PopChecker({
    dpop: d ? dpopSetup(d, ctx, redis) : undefined,
    certificateSource: certificateSource(config.credentials.client_certificate),
    now: ctx.now,
  });
}
