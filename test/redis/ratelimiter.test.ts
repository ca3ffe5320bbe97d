// The Redis rate limiter and the shared cache against a real redis-server.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { createSharedCache, hashCacheKey, MemorySharedCache } from '../../src/stores/redis/cache.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { CountingRateLimiter } from '../../src/stores/redis/counting-limiter.ts';
import { rateLimitMetrics, redisMetrics } from '../../src/stores/redis/metrics.ts';
import { RedisRateLimiter, rateLimitRedisKey } from '../../src/stores/redis/ratelimiter.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/service.ts';

const log = pino({ level: 'silent' });
let redis: TestRedis;
const conns: RedisConnection[] = [];

async function connect(prefix = 'rl:', registry = new Registry()): Promise<RedisConnection> {
  const cfg = parseConfig(`redis: { url: "${redis.url}", key_prefix: "${prefix}", connect_timeout_ms: 500 }\n`).redis!;
  const c = new RedisConnection(cfg, log, redisMetrics(registry));
  conns.push(c);
  await c.waitUntilReady(5000);
  return c;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of conns) await c.close();
  await redis?.stop();
});

describe('Redis rate limiter', () => {
  it('two limiters on one Redis share one budget exactly, under concurrent hits', async () => {
    const a = new RedisRateLimiter(await connect());
    const b = new RedisRateLimiter(await connect());
    const policy = { name: 'shared', limit: 25, windowSeconds: 30 * 86400 };
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).hit(policy, 'client-1', Date.now())),
    );
    expect(results.filter((r) => r.allowed)).toHaveLength(25);
    // Remaining counts down 24..0 across both, each value exactly once.
    expect(
      results
        .filter((r) => r.allowed)
        .map((r) => r.remaining)
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 25 }, (_, i) => i));
    for (const r of results) expect(r.resetSeconds).toBeGreaterThan(0);
    // Another key has its own budget.
    expect((await a.hit(policy, 'client-2', Date.now())).allowed).toBe(true);
  });

  it('a window resets on the Redis clock, and the counter expires with it', async () => {
    const conn = await connect();
    const limiter = new RedisRateLimiter(conn);
    const policy = { name: 'per-second', limit: 2, windowSeconds: 1 };
    // Start right after a second boundary so the three hits share a window.
    const [sec, usec] = await redis.client().time();
    await new Promise((r) => setTimeout(r, 1000 - Math.floor(Number(usec) / 1000) + 20));
    void sec;
    const first = await Promise.all([1, 2, 3].map(() => limiter.hit(policy, 'k', Date.now())));
    expect(first.map((r) => r.allowed)).toEqual([true, true, false]);
    expect(first[2].resetSeconds).toBe(1);
    const ttl = await redis.client().pttl(rateLimitRedisKey('rl:', 'per-second', 'k'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await limiter.hit(policy, 'k', Date.now())).allowed).toBe(true);
  });

  it('keeps no identifier in Redis: the key is hashed', async () => {
    const conn = await connect('rlh:');
    await new RedisRateLimiter(conn).hit({ name: 'p', limit: 5, windowSeconds: 60 }, 'alice@example.com', Date.now());
    const keys = await redis.client().keys('rlh:*');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^rlh:rl:p:[A-Za-z0-9_-]{22}$/);
    expect(keys[0]).not.toContain('alice');
  });

  it('Redis slow (clients paused): a hit gives up after command_timeout_ms, counted as a timeout', async () => {
    const registry = new Registry();
    const conn = await connect('rls:', registry);
    const limiter = new RedisRateLimiter(conn);
    const policy = { name: 'slow', limit: 5, windowSeconds: 60 };
    expect((await limiter.hit(policy, 'k', Date.now())).allowed).toBe(true);
    await redis.client().call('CLIENT', 'PAUSE', '600', 'ALL');
    const t0 = Date.now();
    await expect(limiter.hit(policy, 'k', Date.now())).rejects.toBeInstanceOf(DependencyUnavailableError);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(400);
    expect(await registry.metrics()).toMatch(
      /portcullis_redis_command_errors_total\{op="ratelimit",kind="timeout"\} 1/,
    );
    await new Promise((r) => setTimeout(r, 700));
    expect((await limiter.hit(policy, 'k', Date.now())).allowed).toBe(true);
  });

  it('Redis down: fails fast with DependencyUnavailableError, counted; works again after a restart', async () => {
    const registry = new Registry();
    const conn = await connect('rld:', registry);
    const limiter = new CountingRateLimiter(new RedisRateLimiter(conn), rateLimitMetrics(registry));
    const policy = { name: 'down', limit: 5, windowSeconds: 60 };
    expect((await limiter.hit(policy, 'k', Date.now())).allowed).toBe(true);
    await redis.kill();
    await waitFor(() => !conn.isUp(), 3000, 10);
    const t0 = Date.now();
    await expect(limiter.hit(policy, 'k', Date.now())).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(Date.now() - t0).toBeLessThan(50);
    await redis.restart();
    await waitFor(() => conn.isUp(), 5000, 20);
    expect((await limiter.hit(policy, 'k', Date.now())).allowed).toBe(true);
    const text = await registry.metrics();
    expect(text).toContain('portcullis_ratelimit_decisions_total{policy="down",result="allowed"} 2');
    expect(text).toContain('portcullis_ratelimit_decisions_total{policy="down",result="error"} 1');
    expect(text).toMatch(/portcullis_redis_command_errors_total\{op="ratelimit",kind="unavailable"\} 1/);
    expect(text).toMatch(/portcullis_redis_command_duration_seconds_count\{op="ratelimit"\} 3/);
  });
});

describe('shared cache', () => {
  it('memory: TTL and LRU bound, keys hashed', async () => {
    const c = new MemorySharedCache<{ sub: string }>(2);
    await c.set('token-a', { sub: 'a' }, 0.2);
    await c.set('token-b', { sub: 'b' }, 60);
    expect(await c.get('token-a')).toEqual({ sub: 'a' });
    await c.set('token-c', { sub: 'c' }, 60); // evicts the least recently used (b)
    expect(await c.get('token-b')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 250));
    expect(await c.get('token-a')).toBeUndefined();
    expect(await c.get('token-c')).toEqual({ sub: 'c' });
  });

  it('with Redis: one replica sets, another reads; the token never appears in Redis; TTL is kept', async () => {
    const a = createSharedCache<{ active: boolean; sub: string }>({
      namespace: 'introspection',
      maxEntries: 100,
      redis: await connect('c1:'),
    });
    const b = createSharedCache<{ active: boolean; sub: string }>({
      namespace: 'introspection',
      maxEntries: 100,
      redis: await connect('c1:'),
    });
    const token = 'opaque-token-value-123';
    await a.set(token, { active: true, sub: 'alice' }, 2);
    expect(await b.get(token)).toEqual({ active: true, sub: 'alice' });
    const keys = await redis.client().keys('c1:*');
    expect(keys).toEqual([`c1:cache:introspection:${hashCacheKey(token)}`]);
    const stored = await redis.client().get(keys[0]);
    expect(stored).not.toContain(token);
    const ttl = await redis.client().pttl(keys[0]);
    expect(ttl).toBeGreaterThan(1000);
    expect(ttl).toBeLessThanOrEqual(2000);
    // Another namespace does not see it.
    expect(
      await createSharedCache({ namespace: 'jwt-rejected', maxEntries: 10, redis: await connect('c1:') }).get(token),
    ).toBeUndefined();
    await b.delete(token);
    expect(await redis.client().exists(keys[0])).toBe(0);
  });

  it('Redis down: local entries still hit, the rest are misses (never an error)', async () => {
    const conn = await connect('c2:');
    const cache = createSharedCache<string>({ namespace: 'jwt-rejected', maxEntries: 100, redis: conn });
    const other = createSharedCache<string>({
      namespace: 'jwt-rejected',
      maxEntries: 100,
      redis: await connect('c2:'),
    });
    await other.set('remote-only', 'x', 60);
    await cache.set('local', 'y', 60);
    await redis.kill();
    await waitFor(() => !conn.isUp(), 3000, 10);
    expect(await cache.get('local')).toBe('y');
    expect(await cache.get('remote-only')).toBeUndefined();
    await expect(cache.set('z', 'z', 60)).resolves.toBeUndefined();
    await redis.restart();
    await waitFor(() => conn.isUp(), 5000, 20);
  });
});
