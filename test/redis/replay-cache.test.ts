// The DPoP replay cache shared through a real redis-server: two replicas (two connections, two
// caches) never both accept one proof, even when they race; entries expire with the proof; only a
// hash is stored. Redis killed, or too slow to answer: `on_redis_error: deny` (default) is a 503
// (DependencyUnavailableError), `allow` falls back to the replica's own memory and reports it.
// @module-tag redis-server
import * as dpop from 'dpop';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { checkDpopReplay, verifyDpopProof, type DpopPolicy } from '../../src/credentials/pop/dpop.ts';
import { normalizeHtu } from '../../src/credentials/pop/htu.ts';
import { MemoryReplayCache, replayKey } from '../../src/stores/replay-cache.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisReplayCache } from '../../src/stores/redis/replay-cache.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/service.ts';

const log = pino({ level: 'silent' });
let redis: TestRedis;
const connections: RedisConnection[] = [];

async function connect(commandTimeoutMs = 200): Promise<RedisConnection> {
  const cfg = parseConfig(
    `redis: { url: "${redis.url}", key_prefix: "rc:", connect_timeout_ms: 500, command_timeout_ms: ${commandTimeoutMs} }\n`,
  ).redis!;
  const conn = new RedisConnection(cfg, log);
  connections.push(conn);
  await conn.waitUntilReady(5000);
  return conn;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await redis?.stop();
});

let n = 0;
const freshKey = () => replayKey('jkt-test', `jti-${Date.now()}-${n++}`);

describe('two replicas on one Redis', () => {
  it('a proof seen on replica A is a replay on replica B (and on A again)', async () => {
    const a = new RedisReplayCache(await connect());
    const b = new RedisReplayCache(await connect());
    const key = freshKey();
    const exp = Date.now() + 60_000;
    expect(await a.seen(key, exp)).toBe(false);
    expect(await b.seen(key, exp)).toBe(true);
    expect(await a.seen(key, exp)).toBe(true);
    // Without Redis between them, B's own memory would not know it.
    expect(await new MemoryReplayCache().seen(key, exp)).toBe(false);
  });

  it('50 concurrent uses of one proof spread over both replicas: exactly one is first', async () => {
    const a = new RedisReplayCache(await connect());
    const b = new RedisReplayCache(await connect());
    const key = freshKey();
    const exp = Date.now() + 60_000;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).seen(key, exp)));
    expect(answers.filter((seen) => !seen)).toHaveLength(1);
  });

  it('one SET NX PX: the key is a hash under the prefix, expiring when the proof would be refused anyway', async () => {
    const a = new RedisReplayCache(await connect());
    const jti = `visible-jti-${Date.now()}`;
    const key = replayKey('jkt-visible', jti);
    const exp = Date.now() + 30_000;
    await a.seen(key, exp);
    const client = redis.client();
    const stored = await client.keys('rc:dpop:jti:*');
    expect(stored).toContain(`rc:dpop:jti:${key}`);
    expect(stored.join(' ')).not.toContain(jti);
    expect(stored.join(' ')).not.toContain('jkt-visible');
    const pttl = await client.pttl(`rc:dpop:jti:${key}`);
    expect(pttl).toBeGreaterThan(28_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
  });

  it('once expired, the entry is gone from Redis', async () => {
    const a = new RedisReplayCache(await connect(), { local: new MemoryReplayCache() });
    const key = freshKey();
    await a.seen(key, Date.now() + 150);
    expect(await redis.client().exists(`rc:dpop:jti:${key}`)).toBe(1);
    await waitFor(async () => (await redis.client().exists(`rc:dpop:jti:${key}`)) === 0, 2000, 25);
  });

  it('end to end: a dpop-package proof verified on replica A is dpop_replayed on replica B', async () => {
    const a = new RedisReplayCache(await connect());
    const b = new RedisReplayCache(await connect());
    const kp = await dpop.generateKeyPair('ES256');
    const jkt = await dpop.calculateThumbprint(kp.publicKey);
    const token = 'opaque-token-value';
    const htu = 'https://api.example.com/v1/orders';
    const proof = await dpop.generateProof(kp, htu, 'GET', undefined, token);
    const policy: DpopPolicy = { algorithms: ['ES256'], maxAgeSeconds: 60, clockSkewSeconds: 5 };
    const verify = () =>
      verifyDpopProof({ proof, method: 'GET', htu: normalizeHtu(htu), accessToken: token, cnfJkt: jkt }, policy);
    const onA = await verify();
    if (!onA.ok) throw new Error(onA.reason);
    expect(await checkDpopReplay(a, onA)).toBeUndefined();
    const onB = await verify();
    if (!onB.ok) throw new Error(onB.reason);
    expect(await checkDpopReplay(b, onB)).toMatchObject({
      ok: false,
      reason: 'dpop_replayed',
      error: 'invalid_dpop_proof',
    });
  });
});

describe('Redis down or slow', () => {
  it('deny (default): 503 (DependencyUnavailableError, Retry-After 2) when Redis is killed; works again once it is back', async () => {
    const conn = await connect();
    const deny = new RedisReplayCache(conn);
    const failOpen: Error[] = [];
    const allow = new RedisReplayCache(conn, { onRedisError: 'allow', onFailOpen: (e) => failOpen.push(e) });
    const before = freshKey();
    expect(await deny.seen(before, Date.now() + 60_000)).toBe(false);

    await redis.kill();
    await waitFor(() => !conn.isUp(), 5000, 20);
    const err = await deny.seen(freshKey(), Date.now() + 60_000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ reason: 'redis_unavailable', retryAfterSeconds: 2 });
    // A replay this replica saw itself is still refused without Redis.
    expect(await deny.seen(before, Date.now() + 60_000)).toBe(true);

    // allow: a new proof passes on this replica's memory alone, reported; its replay here is still caught.
    const during = freshKey();
    expect(await allow.seen(during, Date.now() + 60_000)).toBe(false);
    expect(failOpen).toHaveLength(1);
    expect(failOpen[0]).toBeInstanceOf(DependencyUnavailableError);
    expect(await allow.seen(during, Date.now() + 60_000)).toBe(true);

    await redis.restart();
    await waitFor(() => conn.isUp(), 10_000, 50);
    const after = freshKey();
    expect(await deny.seen(after, Date.now() + 60_000)).toBe(false);
    expect(await redis.client().exists(`rc:dpop:jti:${after}`)).toBe(1);
  });

  it('a Redis slower than command_timeout_ms: deny is a 503 within the timeout, never a wait', async () => {
    const conn = await connect(100);
    const deny = new RedisReplayCache(conn);
    const pauser = redis.client();
    await pauser.call('CLIENT', 'PAUSE', '800', 'WRITE');
    try {
      const started = Date.now();
      const err = await deny.seen(freshKey(), Date.now() + 60_000).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DependencyUnavailableError);
      expect((err as DependencyUnavailableError).reason).toBe('redis_timeout');
      expect(Date.now() - started).toBeLessThan(600);
    } finally {
      await pauser.call('CLIENT', 'UNPAUSE');
    }
  });
});
