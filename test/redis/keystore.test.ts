// The Redis key store against a real redis-server: shared records, propagation (pub/sub, version
// check, resync), hashes only, and behaviour while Redis is down.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey, hashApiKey } from '../../src/credentials/api-key/format.ts';
import { verifyApiKey } from '../../src/credentials/api-key/verifier.ts';
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

  it('stores subject and metadata, and reads them back validated (identity.subject, identity.claims)', async () => {
    const admin = store('t-meta:');
    const { key, record } = await createKey(admin, 'pcl', {
      clientId: 'acme',
      subject: 'svc-reports',
      metadata: { team: 'payments', tier: 'gold' },
    });
    const stored = JSON.parse((await redis.client().hget('t-meta:{apikeys}', record.id))!) as Record<string, unknown>;
    expect(stored).toMatchObject({ subject: 'svc-reports', metadata: { team: 'payments', tier: 'gold' } });
    const reader = await started('t-meta:');
    const id = await verifyApiKey(key, 'pcl', reader, 'orders', '10.0.0.1', Date.now());
    expect(id.subject).toBe('svc-reports');
    expect(id.claims).toEqual({ team: 'payments', tier: 'gold' });
    // A hand-written record with a control character in its metadata is locked out, like any invalid field.
    await redis
      .client()
      .hset('t-meta:{apikeys}', record.id, JSON.stringify({ ...stored, metadata: { team: 'a\r\nb' } }));
    await redis.client().incr('t-meta:{apikeys}:version');
    await waitFor(async () => (await reader.listInvalid()).some((l) => l.id === record.id), 5000);
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

  it('every record is validated against the key-record schema when loaded: a failing one is locked out and logged by id, never partly trusted', async () => {
    const raw = redis.client();
    const keys = Array.from({ length: 8 }, () => generateApiKey('pcl'));
    const record = (i: number, over: Record<string, unknown>) =>
      JSON.stringify({
        id: `k${i}`,
        hash: hashApiKey(keys[i]),
        client_id: 'acme',
        scopes: ['orders:read'],
        status: 'active',
        ...over,
      });
    await raw.hset(
      't4:{apikeys}',
      'k0',
      record(0, {}), // the control
      'k1',
      record(1, { routes: 'orders-internal-admin' }), // a string, not a list: no substring match
      'k2',
      record(2, { scopes: ['orders:read orders:write'] }), // a scope with a space is not two scopes
      'k3',
      record(3, { status: 'enabled' }),
      'k4',
      record(4, { cidrs: '10.0.0.0/8' }),
      'k5',
      record(5, { route: ['orders'] }), // a typo of routes: not "any route"
      'k6',
      record(6, { id: 'k-other' }), // its id is not its field
      'k_bad',
      'not json',
    );
    const lines: string[] = [];
    const conn = new RedisConnection(redisConfig('t4:'), log);
    const s = new RedisKeyStore(conn, {
      resyncSeconds: 30,
      log: pino({ level: 'error' }, { write: (l: string) => void lines.push(l) }),
      ownsConnection: true,
    });
    opened.push(s);
    await s.start();
    await waitFor(() => s.isReady(), 5000);
    expect(s.size()).toBe(1);
    expect((await s.findByHash(hashApiKey(keys[0])))?.id).toBe('k0');
    const reason = (key: string) =>
      verifyApiKey(key, 'pcl', s, 'orders', '10.0.0.1', Date.now()).then(
        () => 'allowed',
        (e) => e.reason,
      );
    expect(await reason(keys[0])).toBe('allowed');
    for (const i of [1, 2, 3, 4, 5, 6]) expect(await reason(keys[i]), `k${i}`).toBe('api_key_record_invalid');
    const logged = lines.map((l) => JSON.parse(l) as { key_id?: string; position: string; problems: string[] });
    expect(logged.map((l) => l.position).sort()).toEqual(['"k1"', '"k2"', '"k3"', '"k4"', '"k5"', '"k6"', '"k_bad"']);
    expect(logged.find((l) => l.key_id === 'k1')!.problems).toEqual([expect.stringMatching(/^routes: /)]);
    expect(logged.find((l) => l.key_id === 'k5')!.problems).toEqual([expect.stringMatching(/^\(record\): .*route/)]);
    for (const k of keys) expect(lines.join('').includes(k)).toBe(false);
    // Said once: a resync of the same records does not log them again.
    await s.sync();
    expect(lines).toHaveLength(logged.length);
  });

  it('a record edited into an invalid one stops serving at once (the old version is not kept); fixed, it serves again', async () => {
    const replica = await started('t4b:');
    const admin = store('t4b:');
    const { key, record } = await createKey(admin, 'pcl', { clientId: 'acme', scopes: ['orders:read'] });
    const reason = () =>
      verifyApiKey(key, 'pcl', replica, 'orders', '10.0.0.1', Date.now()).then(
        () => 'allowed',
        (e) => e.reason,
      );
    await waitFor(async () => (await reason()) === 'allowed', 2000, 10);
    const raw = redis.client();
    const edit = async (json: string) => {
      await raw.hset('t4b:{apikeys}', record.id, json);
      const v = await raw.incr('t4b:{apikeys}:version');
      await raw.publish('t4b:apikeys:changed', `${v} ${record.id}`);
    };
    await edit(JSON.stringify({ ...record, routes: 'orders' }));
    await waitFor(async () => (await reason()) === 'api_key_record_invalid', 2000, 10);
    await edit(JSON.stringify({ ...record, routes: ['orders'] }));
    await waitFor(async () => (await reason()) === 'allowed', 2000, 10);
    // Deleted by hand: gone at once, not served from the copy.
    await raw.hdel('t4b:{apikeys}', record.id);
    const v = await raw.incr('t4b:{apikeys}:version');
    await raw.publish('t4b:apikeys:changed', `${v} ${record.id}`);
    await waitFor(async () => (await reason()) === 'api_key_unknown', 2000, 10);
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
    await expect(store('t5:').list()).rejects.toThrow(
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ .*config: redis/,
    );

    await redis.restart();
    await waitFor(() => replica.conn.isUp(), 5000, 20);
    expect(await replica.findByHash('b'.repeat(64))).toBeUndefined();
    // The replica subscribed again by itself on the new connection (ioredis's own resubscribe is off).
    const subscribers = async () =>
      ((await redis.client().call('PUBSUB', 'NUMSUB', 't5:apikeys:changed')) as [string, number])[1];
    await waitFor(async () => (await subscribers()) === 1, 5000, 20);
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
    await waitFor(
      async () => replica.conn.isUp() && (await replica.findByHash(hashApiKey(key))) === undefined,
      5000,
      20,
    );
  });
});
