// A small shared cache for verified-token answers (introspection results, JWT rejections):
// get / set with a TTL, keyed by a hash of the raw key (a token is never a cache key).
//
//   memory  : LRU in this process (no `redis` section)
//   redis   : P + "cache:" + namespace + ":" + base64url(SHA-256(key)), value JSON, expiring (PX)
//   tiered  : memory in front of Redis: hits stay local; a local miss asks Redis, and what Redis
//             has is copied locally for the rest of its TTL, so replicas share answers.
//
// A cache never fails a Check: a Redis error is a miss (and a metric), a failed set is dropped.
// Use createSharedCache(); see docs/redis.md "Shared cache".
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RedisConnection } from './connection.ts';

export interface SharedCache<V> {
  /** The value, or undefined on a miss, an expired entry or any backend failure. */
  get(key: string): Promise<V | undefined>;
  /** Keeps `value` for ttlSeconds (fractions allowed; ≤ 0 stores nothing). Never throws. */
  set(key: string, value: V, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** What callers' raw keys (tokens) become before they are stored anywhere. */
export function hashCacheKey(raw: string): string {
  return createHash('sha256').update(raw).digest('base64url');
}

interface Entry<V> {
  /** Expiry, ms since epoch. */
  e: number;
  v: V;
}

export class MemorySharedCache<V> implements SharedCache<V> {
  private readonly lru: LRUCache<string, Entry<V>>;

  constructor(maxEntries: number) {
    this.lru = new LRUCache({ max: maxEntries });
  }

  async get(key: string): Promise<V | undefined> {
    return this.getEntry(hashCacheKey(key))?.v;
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    this.setEntry(hashCacheKey(key), { e: Date.now() + ttlSeconds * 1000, v: value });
  }

  async delete(key: string): Promise<void> {
    this.lru.delete(hashCacheKey(key));
  }

  /** By already-hashed key (the tiered cache hashes once). */
  getEntry(hashed: string): Entry<V> | undefined {
    const entry = this.lru.get(hashed);
    if (!entry) return undefined;
    if (entry.e <= Date.now()) {
      this.lru.delete(hashed);
      return undefined;
    }
    return entry;
  }

  setEntry(hashed: string, entry: Entry<V>): void {
    if (entry.e > Date.now()) this.lru.set(hashed, entry);
  }

  deleteEntry(hashed: string): void {
    this.lru.delete(hashed);
  }
}

export class RedisSharedCache<V> implements SharedCache<V> {
  constructor(
    private readonly conn: RedisConnection,
    readonly namespace: string,
  ) {}

  private redisKey(hashed: string): string {
    return this.conn.key('cache', this.namespace, hashed);
  }

  async get(key: string): Promise<V | undefined> {
    return (await this.getEntry(hashCacheKey(key)))?.v;
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    await this.setEntry(hashCacheKey(key), { e: Date.now() + ttlSeconds * 1000, v: value });
  }

  async delete(key: string): Promise<void> {
    await this.deleteEntry(hashCacheKey(key));
  }

  async getEntry(hashed: string): Promise<Entry<V> | undefined> {
    if (!this.conn.isUp()) return undefined;
    try {
      const json = await this.conn.run('cache_get', (c) => c.get(this.redisKey(hashed)));
      if (!json) return undefined;
      const entry = JSON.parse(json) as Entry<V>;
      return typeof entry?.e === 'number' && entry.e > Date.now() ? entry : undefined;
    } catch {
      return undefined; // counted by run(); a cache failure is a miss
    }
  }

  async setEntry(hashed: string, entry: Entry<V>): Promise<void> {
    const ttlMs = Math.floor(entry.e - Date.now());
    if (ttlMs <= 0 || !this.conn.isUp()) return;
    try {
      await this.conn.run('cache_set', (c) => c.set(this.redisKey(hashed), JSON.stringify(entry), 'PX', ttlMs));
    } catch {
      // counted by run(); the next replica asks the backend itself
    }
  }

  async deleteEntry(hashed: string): Promise<void> {
    if (!this.conn.isUp()) return;
    try {
      await this.conn.run('cache_delete', (c) => c.del(this.redisKey(hashed)));
    } catch {
      // counted by run(); the entry expires by its TTL
    }
  }
}

export class TieredSharedCache<V> implements SharedCache<V> {
  constructor(
    private readonly local: MemorySharedCache<V>,
    private readonly remote: RedisSharedCache<V>,
  ) {}

  async get(key: string): Promise<V | undefined> {
    const hashed = hashCacheKey(key);
    const hit = this.local.getEntry(hashed);
    if (hit) return hit.v;
    const entry = await this.remote.getEntry(hashed);
    if (!entry) return undefined;
    this.local.setEntry(hashed, entry);
    return entry.v;
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    const hashed = hashCacheKey(key);
    const entry = { e: Date.now() + ttlSeconds * 1000, v: value };
    this.local.setEntry(hashed, entry);
    await this.remote.setEntry(hashed, entry);
  }

  async delete(key: string): Promise<void> {
    const hashed = hashCacheKey(key);
    this.local.deleteEntry(hashed);
    await this.remote.deleteEntry(hashed);
  }
}

export interface SharedCacheOptions {
  /** Short name that separates one cache's keys from another's, e.g. "introspection", "jwt-rejected". */
  namespace: string;
  /** Entries kept in this process (LRU). */
  maxEntries: number;
  /** The components' Redis connection, when the config has a `redis` section. */
  redis?: RedisConnection;
}

/** Memory-only without Redis; memory in front of Redis with it. Values must be JSON-serialisable. */
export function createSharedCache<V>(opts: SharedCacheOptions): SharedCache<V> {
  if (!/^[a-z0-9_-]{1,32}$/.test(opts.namespace))
    throw new Error(`cache namespace "${opts.namespace}": 1-32 of a-z 0-9 _ -`);
  const local = new MemorySharedCache<V>(opts.maxEntries);
  return opts.redis ? new TieredSharedCache(local, new RedisSharedCache<V>(opts.redis, opts.namespace)) : local;
}
