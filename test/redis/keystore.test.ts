// The Redis key store against a real redis-server: shared records, propagation (pub/sub, version
// check, resync), hashes only, and behaviour while Redis is down.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createKey, revokeKey } from '../../src/credentials/apikey-admin.ts';
import { hashApiKey } from '../../src/credentials/apikey-format.ts';
import { DependencyUnavailableError } from '../../src/core/errors.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisKeyStore } from '../../src/stores/redis/keystore.ts';
import { redisMetrics } from '../../src/stores/redis/metrics.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { waitFor } from '../support/service.ts';

const log = pino({ level: 'silent' });
let redis: TestRedis;
const opened: Array<{ close(): Promise<void> }> = [];

function redisConfig(prefix: string) {
  return parseConfig(`redis: { url: "${redis.url}", key_prefix: "${prefix}", connect_timeout_ms: 500 }\n`).redis!;
}

function store(prefix: string, resyncSeconds = 30, registry = new Registry()): RedisKeyStore {
  const conn = new RedisConnection(redisConfig(prefix), log, redisMetrics(registry));
  const s = new RedisKeyStore(conn, { resyncSeconds, log, metrics: redisMetrics(registry), ownsConnection: true });
  opened.push(s);
  return s;
}

async function started(prefix: string, resyncSeconds = 30, registry?: Registry): Promise<RedisKeyStore> {
  const s = store(prefix, resyncSeconds, registry);
  await s.start();
  await waitFor(() => s.isReady(), 5000);
  return s;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const s of opened) await s.close().catch(() => {});
  await redis?.stop();
});

describe('Redis key store', () => {
  it('stores hashes only, under the prefix, and a fresh CLI-style store (not started) reads them', async () => {
    const admin = store('t1:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme', scopes: ['reports:read'] });
    const raw = redis.client();
    const keys = await raw.keys('*');
    expect(keys.sort()).toEqual(['t1:{apikeys}', 't1:{apikeys}:version']);
    const stored = await raw.hget('t1:{apikeys}', record.id);
    expect(stored).not.toContain(key);
    expect(stored).not.toContain(key.slice(4, 20));
    expect(JSON.parse(stored!).hash).toBe(hashApiKey(key));

    const reader = store('t1:');
    const listed = await reader.list();
    expect(listed.map((r) => r.id)).toEqual([record.id]);
    // A different prefix is a different store.
    expect(await store('other:').list()).toEqual([]);
  });

  it('propagates a create and a revoke to a running replica through pub/sub, in well under 2 s', async () => {
    const registry = new Registry();
    const replica = await started('t2:', 30, registry);
    const admin = store('t2:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme' });
    const t0 = Date.now();
    await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'active', 2000, 5);
    await revokeKey(admin, record.id);
    await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'revoked', 2000, 5);
    expect(Date.now() - t0).toBeLessThan(1000);
    // Pub/sub messages did this (one record each), not the version check's full reload.
    expect(await registry.metrics()).toMatch(/portcullis_keystore_syncs_total\{result="change"\} 2\n/);
  });

  it('a change whose message was lost (written without PUBLISH) is still picked up by the version check within 2 s', async () => {
    const registry = new Registry();
    const replica = await started('t3:', 3600, registry);
    const admin = store('t3:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme' });
    await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'active', 2000, 5);
    const raw = redis.client();
    await raw.hset('t3:{apikeys}', record.id, JSON.stringify({ ...record, status: 'revoked' }));
    await raw.incr('t3:{apikeys}:version');
    const t0 = Date.now();
    await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'revoked', 2500, 20);
    expect(Date.now() - t0).toBeLessThan(2000);
    const text = await registry.metrics();
    expect(text).toMatch(/portcullis_keystore_syncs_total\{result="full"\} [2-9]/);
    expect(text).toMatch(/portcullis_keystore_last_sync_timestamp_seconds \d/);
  });

  it('a revoke that pub/sub applies while a full reload is in flight is not undone by the older snapshot', async () => {
    const replica = await started('t3b:', 3600);
    const admin = store('t3b:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme' });
    const status = async () => (await replica.findByHash(hashApiKey(key)))?.status;
    await waitFor(async () => (await status()) === 'active', 2000, 5);
    // Hold the next full reload's snapshot (key still active) until the revoke has reached the
    // replica through pub/sub; only then let the reload finish with that older snapshot.
    const r = replica as unknown as { readAll(): Promise<unknown>; needFull: boolean };
    const readAll = r.readAll.bind(replica);
    let held = false;
    r.readAll = async () => {
      const snapshot = await readAll();
      if (!held) {
        held = true;
        await revokeKey(admin, record.id);
        await waitFor(async () => (await status()) === 'revoked', 2000, 5);
      }
      return snapshot;
    };
    for (let i = 0; i < 10 && !held; i++) {
      r.needFull = true;
      await replica.sync();
    }
    expect(held).toBe(true);
    expect(await status()).toBe('revoked');
  });

  it('ignores malformed records (the key is denied) and treats an unknown status as revoked', async () => {
    const raw = redis.client();
    const hash = 'a'.repeat(64);
    await raw.hset('t4:{apikeys}', 'k_bad', 'not json', 'k_odd', JSON.stringify({ id: 'k_odd', hash, client_id: 'x', scopes: [], status: 'enabled' }));
    const s = await started('t4:');
    expect(s.size()).toBe(1);
    expect((await s.findByHash(hash))?.status).toBe('revoked');
  });

  it('Redis down: keys in the local copy keep answering, unknown keys are 503 (not 401); after a restart it resyncs by itself', async () => {
    const replica = await started('t5:');
    const admin = store('t5:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme' });
    const { key: revoked, record: revokedRecord } = await createKey(admin, 'pcl', { clientId: 'beta' });
    await revokeKey(admin, revokedRecord.id);
    await waitFor(async () => (await replica.findByHash(hashApiKey(revoked)))?.status === 'revoked', 2000, 5);
    await redis.client().save(); // persisted, so the restarted Redis still has the keys

    await redis.kill();
    await waitFor(() => !replica.conn.isUp(), 3000, 10);
    expect((await replica.findByHash(hashApiKey(key)))?.id).toBe(record.id);
    expect((await replica.findByHash(hashApiKey(revoked)))?.status).toBe('revoked');
    await expect(replica.findByHash('b'.repeat(64))).rejects.toBeInstanceOf(DependencyUnavailableError);
    // The CLI fails with an operator-facing message instead of hanging.
    await expect(store('t5:').list()).rejects.toThrow(/cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ .*config: redis/);

    await redis.restart();
    await waitFor(() => replica.conn.isUp(), 5000, 20);
    expect(await replica.findByHash('b'.repeat(64))).toBeUndefined();
    // A revoke made after the restart arrives as usual.
    await revokeKey(admin, record.id);
    await waitFor(async () => (await replica.findByHash(hashApiKey(key)))?.status === 'revoked', 2000, 10);
  });

  it('a wiped Redis (restart without data) is reflected after reconnecting: Redis is the source of truth', async () => {
    const replica = await started('t6:');
    const admin = store('t6:');
    const { key } = await createKey(admin, 'pcl', { clientId: 'acme' });
    await waitFor(async () => (await replica.findByHash(hashApiKey(key))) !== undefined, 2000, 5);
    await redis.client().flushall();
    await redis.client().save();
    await redis.restart();
    await waitFor(async () => replica.conn.isUp() && (await replica.findByHash(hashApiKey(key))) === undefined, 5000, 20);
  });
});
