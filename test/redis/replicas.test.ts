// Two Portcullis replicas on one real redis-server act as one: keys managed with the CLI reach
// both, a revocation through one replica's config is denied by the other within 2 s, and a
// client's rate limit is one budget across both, exact under concurrent load.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisKeyStore } from '../../src/stores/redis/keystore.ts';
import { runCli } from '../support/cli.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';

const LIMIT = 15;

const config = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: "replicas:", connect_timeout_ms: 500, command_timeout_ms: 1000 }
credentials:
  api_key: { headers: [x-api-key], store: { type: redis } }
rate_limits:
  - { name: partner, key: client_id, limit: ${LIMIT}, window_seconds: 2592000 }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: partner }
`;

let redis: TestRedis;
let a: TestService;
let b: TestService;
/** In-process admin store: the CLI is exercised by the first tests; the rest only need keys quickly. */
let admin: RedisKeyStore;

beforeAll(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([startService(config(redis.url)), startService(config(redis.url))]);
  await waitFor(async () => a.service.app.isReady() && b.service.app.isReady(), 10_000);
  const silent = pino({ level: 'silent' });
  admin = new RedisKeyStore(new RedisConnection(parseConfig(config(redis.url)).redis!, silent), {
    resyncSeconds: 30,
    log: silent,
    ownsConnection: true,
  });
});

afterAll(async () => {
  await admin?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.stop();
});

async function cli(svc: TestService, ...args: string[]) {
  const r = await runCli([...args, '--config', svc.configFile, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

const call = (svc: TestService, key: string, path = '/v1/orders') => svc.envoy({ path, headers: { 'x-api-key': key } });

describe('two replicas on one Redis', () => {
  it('a key created with the CLI passes on both; revoked through one replica, the other denies it within 2 s', async () => {
    const created = await cli(a, 'keys', 'create', '--client-id', 'acme', '--scopes', 'orders:read');
    expect(created.key).toMatch(/^pcl_/);
    // Only the hash is in Redis.
    const stored = JSON.stringify(await redis.client().hgetall('replicas:{apikeys}'));
    expect(stored).toContain(created.id);
    expect(stored).not.toContain(created.key);

    await waitFor(async () => (await call(a, created.key)).allowed && (await call(b, created.key)).allowed, 2000, 20);
    const onB = await call(b, created.key);
    expect(onB.upstreamHeaders['x-client-id']).toBe('acme');
    expect(onB.upstreamHeaders['x-api-key']).toBeUndefined();

    const listed = await cli(b, 'keys', 'list');
    expect(listed.map((r: { id: string }) => r.id)).toContain(created.id);

    // Revoke through A's config; B must deny within 2 s of the command returning.
    await cli(a, 'keys', 'revoke', created.id);
    const revokedAt = Date.now();
    await waitFor(async () => (await call(b, created.key)).status === 401, 2000, 10);
    expect(Date.now() - revokedAt).toBeLessThan(2000);
    const denied = await call(b, created.key);
    expect(denied.clientHeaders['www-authenticate']).toBe('Bearer realm="portcullis", error="invalid_token"');
    expect(JSON.parse(denied.body!).error).toBe('invalid_token');
    expect((await call(a, created.key)).status).toBe(401);
  });

  it('rotate through the CLI: both keys pass on both replicas', async () => {
    const first = await cli(b, 'keys', 'create', '--client-id', 'rotor', '--scopes', 'orders:read');
    const rotated = await cli(b, 'keys', 'rotate', first.id, '--grace', '1h');
    await waitFor(async () => (await call(a, rotated.key)).allowed && (await call(b, rotated.key)).allowed, 2000, 20);
    expect((await call(a, first.key)).allowed).toBe(true);
  });

  it(`one client's limit is one budget across both replicas: exactly ${LIMIT} allowed, then 429 with Retry-After and RateLimit headers`, async () => {
    const { key } = await createKey(admin, 'pcl', { clientId: 'limited' });
    await waitFor(
      async () =>
        (await call(a, key, '/v1/orders')).status === 403 && (await call(b, key, '/v1/orders')).status === 403,
      2000,
      20,
    );

    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => call(i % 2 ? a : b, key, '/v1/reports')));
    const allowed = results.filter((r) => r.allowed);
    const limited = results.filter((r) => r.status === 429);
    expect(allowed).toHaveLength(LIMIT);
    expect(limited).toHaveLength(40 - LIMIT);
    // (Which replica's hits land first is up to scheduling: each batches its round trips.)

    // Allowed answers tell the client its remaining quota (response_headers_to_add): each value once.
    const remaining = allowed.map((r) => {
      expect(r.clientHeaders['ratelimit-policy']).toBe(`"partner";q=${LIMIT};w=2592000`);
      const m = /^"partner";r=(\d+);t=(\d+)$/.exec(r.clientHeaders['ratelimit']);
      expect(m).not.toBeNull();
      return Number(m![1]);
    });
    expect(remaining.sort((x, y) => x - y)).toEqual(Array.from({ length: LIMIT }, (_, i) => i));

    for (const r of limited) {
      expect(JSON.parse(r.body!)).toEqual({ error: 'rate_limited', error_description: 'Too many requests' });
      const retry = Number(r.clientHeaders['retry-after']);
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(2592000);
      expect(r.clientHeaders['ratelimit']).toBe(`"partner";r=0;t=${retry}`);
      expect(r.clientHeaders['ratelimit-policy']).toBe(`"partner";q=${LIMIT};w=2592000`);
      expect(r.clientHeaders['www-authenticate']).toBeUndefined();
    }

    // Another client is not affected.
    const other = await createKey(admin, 'pcl', { clientId: 'unlimited-neighbour' });
    await waitFor(async () => (await call(a, other.key, '/v1/reports')).allowed, 2000, 20);
  });

  it('in waves of concurrent requests on both replicas, both allow until the shared budget is spent, then both refuse', async () => {
    const { key } = await createKey(admin, 'pcl', { clientId: 'waves' });
    await waitFor(
      async () =>
        (await call(a, key, '/v1/orders')).status === 403 && (await call(b, key, '/v1/orders')).status === 403,
      2000,
      20,
    );
    const byReplica = { a: 0, b: 0 };
    let total = 0;
    for (let wave = 0; wave < 6; wave++) {
      const res = await Promise.all([a, b, a, b].map((svc) => call(svc, key, '/v1/reports')));
      res.forEach((r, i) => {
        if (r.allowed) byReplica[i % 2 ? 'b' : 'a']++;
        else expect(r.status).toBe(429);
      });
      total += res.filter((r) => r.allowed).length;
    }
    expect(total).toBe(LIMIT);
    expect(byReplica.a).toBeGreaterThan(0);
    expect(byReplica.b).toBeGreaterThan(0);
    expect((await call(a, key, '/v1/reports')).status).toBe(429);
    expect((await call(b, key, '/v1/reports')).status).toBe(429);
  });

  it('metrics: rate-limit decisions by policy, Redis latency, key-store size and last sync; /readyz ready', async () => {
    const text = await (await fetch(`${a.httpBase}/metrics`)).text();
    expect(text).toMatch(/portcullis_ratelimit_decisions_total\{policy="partner",result="allowed"\} \d+/);
    expect(text).toMatch(/portcullis_ratelimit_decisions_total\{policy="partner",result="limited"\} \d+/);
    expect(text).toMatch(/portcullis_redis_command_duration_seconds_count\{op="ratelimit"\} \d+/);
    expect(text).toMatch(/portcullis_redis_up 1/);
    expect(text).toMatch(/portcullis_keystore_keys [1-9]/);
    expect(text).toMatch(/portcullis_keystore_last_sync_timestamp_seconds \d{10}/);
    const ready = await fetch(`${a.httpBase}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});
