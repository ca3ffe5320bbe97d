// The DPoP replay cache shared by every replica (RFC 9449, §11.1): one replica cannot accept a proof
// another has already seen. One round trip per never-seen proof:
//
//   SET P + "dpop:jti:" + replayKey  "1"  NX  PX <ms until the proof expires>
//
// "OK" means the first use; nil means the key was there: a replay. The key is already a hash of
// the proof key's thumbprint and the jti (stores/replay-cache.ts), so neither is stored.
//
// A local cache sits in front: a replay this replica has seen is refused without asking Redis,
// and it is the fallback when Redis is down and `on_redis_error: allow`.
//
// Redis down or slower than command_timeout_ms (docs/proof-of-possession.md, "Replay cache"):
//   deny  (default)  throw DependencyUnavailableError: the Check answers 503 with Retry-After
//   allow            this replica's memory alone decides (replays across replicas go unnoticed
//                    for the outage); reported through onFailOpen for a metric and a log
import { DependencyUnavailableError } from '../../core/errors.ts';
import { MemoryReplayCache, type ReplayCache } from '../replay-cache.ts';
import { REDIS_RETRY_AFTER_SECONDS, type RedisConnection } from './connection.ts';

export interface RedisReplayCacheOptions {
  /** What to do when Redis cannot answer (default deny). */
  onRedisError?: 'deny' | 'allow';
  /** The local cache in front (default: a MemoryReplayCache of the default size). */
  local?: MemoryReplayCache;
  /** A proof was accepted on this replica's memory alone because Redis failed (on_redis_error: allow). */
  onFailOpen?(err: Error): void;
}

export class RedisReplayCache implements ReplayCache {
  private readonly local: MemoryReplayCache;
  private readonly onRedisError: 'deny' | 'allow';

  constructor(
    private readonly conn: RedisConnection,
    private readonly opts: RedisReplayCacheOptions = {},
  ) {
    this.local = opts.local ?? new MemoryReplayCache();
    this.onRedisError = opts.onRedisError ?? 'deny';
  }

  async seen(key: string, expiresAtMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.local.seenNow(key, expiresAtMs, now)) return true;
    const ttlMs = Math.ceil(expiresAtMs - now);
    if (ttlMs <= 0) return false; // already too old to be accepted again: nothing to share
    try {
      if (!this.conn.isUp()) throw new DependencyUnavailableError('redis_unavailable', REDIS_RETRY_AFTER_SECONDS);
      const answer = await this.conn.run('dpop_replay', (c) =>
        c.set(this.conn.key('dpop', 'jti', key), '1', 'PX', ttlMs, 'NX'),
      );
      return answer !== 'OK';
    } catch (e) {
      const err =
        e instanceof DependencyUnavailableError
          ? e
          : new DependencyUnavailableError('redis_error', REDIS_RETRY_AFTER_SECONDS);
      if (this.onRedisError === 'deny') throw err;
      this.opts.onFailOpen?.(err);
      return false; // the local cache has recorded it
    }
  }
}
