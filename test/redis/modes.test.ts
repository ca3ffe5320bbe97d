// The connection factory's other modes against real processes: a three-master Redis Cluster and a
// Sentinel in front of a master. Key store (scripts, transactions, pub/sub), rate limiter and cache.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { hashApiKey } from '../../src/credentials/api-key/format.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { createSharedCache } from '../../src/stores/redis/cache.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisKeyStore } from '../../src/stores/redis/keystore.ts';
import { RedisRateLimiter } from '../../src/stores/redis/ratelimiter.ts';
import { startRedis, startRedisCluster, startRedisSentinel, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/service.ts';

const log = pino({ level: 'silent' });
const closers: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

async function exercise(redisYaml: string) {
  const cfg = parseConfig(`redis: ${redisYaml}\n`).redis!;
  const conn = () => {
    const c = new RedisConnection(cfg, log);
    closers.push(() => c.close());
    return c;
  };
  const replica = new RedisKeyStore(conn(), { resyncSeconds: 30, log });
  const admin = new RedisKeyStore(conn(), { resyncSeconds: 30, log });
  closers.push(
    () => replica.close(),
    () => admin.close(),
  );
  await replica.start();
  await waitFor(() => replica.isReady(), 10_000);

  // Key store: the write script, the load transaction and pub/sub all work in this mode.
  const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme' });
  await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'active', 2000, 10);
  await revokeKey(admin, record.id);
  await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'revoked', 2000, 10);
  expect((await admin.list()).map((r) => r.id)).toEqual([record.id]);

  // Rate limiter: one budget across two connections, keys spread over slots.
  const a = new RedisRateLimiter(conn());
  const b = new RedisRateLimiter(conn());
  await Promise.all([a, b].map((l) => (l as unknown as { conn: RedisConnection }).conn.waitUntilReady(5000)));
  for (const client of ['c1', 'c2', 'c3', 'c4']) {
    const res = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? a : b).hit({ name: 'm', limit: 5, windowSeconds: 3600 }, client, Date.now()),
      ),
    );
    expect(res.filter((r) => r.allowed)).toHaveLength(5);
  }

  // Shared cache across connections.
  const c1 = conn();
  const c2 = conn();
  await Promise.all([c1.waitUntilReady(5000), c2.waitUntilReady(5000)]);
  await createSharedCache<string>({ namespace: 'jwt-rejected', maxEntries: 10, redis: c1 }).set(
    'tok',
    'bad_signature',
    30,
  );
  expect(await createSharedCache<string>({ namespace: 'jwt-rejected', maxEntries: 10, redis: c2 }).get('tok')).toBe(
    'bad_signature',
  );
}

describe('Redis Cluster (mode: cluster)', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    closers.push(() => cluster.stop());
  });

  it('key store, rate limiter and cache work across three masters', async () => {
    await exercise(
      `{ mode: cluster, nodes: ${JSON.stringify(cluster.seeds)}, key_prefix: "cl:", connect_timeout_ms: 1000, command_timeout_ms: 2000 }`,
    );
    // The key store's two keys share one slot (hash tag), on whichever master owns it.
    let found = 0;
    for (const n of cluster.nodes) {
      const keys = (await n.client().call('KEYS', 'cl:{apikeys}*')) as string[];
      if (keys.length) {
        expect(keys.sort()).toEqual(['cl:{apikeys}', 'cl:{apikeys}:version']);
        found++;
      }
    }
    expect(found).toBe(1);
  });
});

describe('Redis Sentinel (mode: sentinel)', () => {
  let master: TestRedis;
  let sentinel: TestRedis;
  beforeAll(async () => {
    master = await startRedis();
    sentinel = await startRedisSentinel(master);
    closers.push(
      () => master.stop(),
      () => sentinel.stop(),
    );
  });

  it('finds the master through the Sentinel; key store, rate limiter and cache work', async () => {
    await exercise(
      `{ mode: sentinel, sentinels: [{ host: 127.0.0.1, port: ${sentinel.port} }], sentinel_name: mymaster, key_prefix: "se:", connect_timeout_ms: 1000, command_timeout_ms: 2000 }`,
    );
    expect(await master.client().hlen('se:{apikeys}')).toBe(1);
  });
});
