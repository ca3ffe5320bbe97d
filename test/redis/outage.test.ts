// Redis killed and restarted under traffic: keys in the local copy keep passing, what needs Redis
// and has nothing cached is 503, rate limits follow on_redis_error, nothing crashes, /readyz
// reports it, and the service recovers by itself once Redis is back.
// @module-tag redis-server
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisKeyStore } from '../../src/stores/redis/keystore.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';

const config = (redisUrl: string) => `
redis: { url: "${redisUrl}", key_prefix: "outage:", connect_timeout_ms: 500 }
credentials:
  api_key: { headers: [x-api-key], store: { type: redis } }
rate_limits:
  - { name: lenient, key: client_id, limit: 100000, window_seconds: 60 }
  - { name: strict, key: key_id, limit: 100000, window_seconds: 60, on_redis_error: deny }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: lenient }
  - { name: payments, match: { path_prefix: /v1/payments }, auth: [api-key], rate_limit: strict }
`;

let redis: TestRedis;
let svc: TestService;
let admin: RedisKeyStore;

beforeAll(async () => {
  redis = await startRedis();
  svc = await startService(config(redis.url));
  await waitFor(() => svc.service.app.isReady(), 10_000);
  const cfg = parseConfig(config(redis.url)).redis!;
  admin = new RedisKeyStore(new RedisConnection(cfg, pino({ level: 'silent' })), {
    resyncSeconds: 30,
    log: pino({ level: 'silent' }),
    ownsConnection: true,
  });
});

afterAll(async () => {
  await admin?.close();
  await svc?.stop();
  await redis?.stop();
});

const call = (key: string, path = '/v1/orders') => svc.envoy({ path, headers: { 'x-api-key': key } });
const metrics = async () => (await fetch(`${svc.httpBase}/metrics`)).text();

describe('Redis outage under traffic', () => {
  it('cached keys keep passing through a kill and a restart; 503 only where Redis is needed; recovers by itself', async () => {
    const { key } = await createKey(admin, 'pcl', { clientId: 'steady' });
    const { key: doomed, record: doomedRecord } = await createKey(admin, 'pcl', { clientId: 'doomed' });
    await revokeKey(admin, doomedRecord.id);
    await waitFor(async () => (await call(key)).allowed && (await call(doomed)).status === 401, 2000, 20);
    await redis.client().save(); // the restarted Redis comes back with its data, as after a failover

    // Steady traffic with the cached key for the whole test: every answer must be 200.
    const statuses = new Map<number, number>();
    let failures = 0;
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        try {
          const r = await call(key);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        } catch {
          failures++; // a gRPC error: the service crashed or hung
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    await new Promise((r) => setTimeout(r, 200));
    await redis.kill();
    await waitFor(async () => (await metrics()).includes('portcullis_redis_up 0'), 3000, 20);

    // Cached: still allowed, and a revoked key still denied.
    expect((await call(key)).status).toBe(200);
    expect((await call(doomed)).status).toBe(401);
    // Not in the local copy: cannot be ruled out without Redis -> 503 with Retry-After.
    const unknown = await call(generateApiKey('pcl'));
    expect(unknown.status).toBe(503);
    expect(JSON.parse(unknown.body!).error).toBe('temporarily_unavailable');
    expect(Number(unknown.clientHeaders['retry-after'])).toBeGreaterThan(0);
    expect(unknown.clientHeaders['www-authenticate']).toBeUndefined();
    // Rate limits: on_redis_error allow passes (and is counted), deny is 503.
    const lenient = await call(key, '/v1/reports');
    expect(lenient.status).toBe(200);
    expect(lenient.clientHeaders['ratelimit']).toBeUndefined();
    const strict = await call(key, '/v1/payments');
    expect(strict.status).toBe(503);
    expect(JSON.parse(strict.body!).error).toBe('temporarily_unavailable');
    const during = await metrics();
    expect(during).toMatch(/portcullis_ratelimit_failopen_total\{policy="lenient"\} [1-9]/);
    expect(during).toMatch(/portcullis_ratelimit_decisions_total\{policy="strict",result="error"\} [1-9]/);
    expect(during).toMatch(/portcullis_redis_command_errors_total\{op="ratelimit",kind="unavailable"\} [1-9]/);
    // Ready (Envoy keeps sending traffic: local copies answer) but reported degraded.
    const readyz = await fetch(`${svc.httpBase}/readyz`);
    expect(readyz.status).toBe(200);
    const body = (await readyz.json()) as { status: string; degraded?: string[] };
    expect(body.status).toBe('ready');
    expect(body.degraded?.[0]).toMatch(/^redis: connection to redis:\/\/127\.0\.0\.1:\d+ lost/);
    expect(svc.service.app.isReady()).toBe(true);

    await new Promise((r) => setTimeout(r, 500));
    await redis.restart();

    // Recovers by itself: unknown keys are a plain 401 again, the strict route passes, readyz is clean.
    await waitFor(async () => (await call(generateApiKey('pcl'))).status === 401, 5000, 50);
    await waitFor(async () => (await call(key, '/v1/payments')).status === 200, 5000, 50);
    expect((await call(key, '/v1/reports')).clientHeaders['ratelimit']).toMatch(/^"lenient";r=\d+;t=\d+$/);
    expect(await (await fetch(`${svc.httpBase}/readyz`)).json()).toEqual({ status: 'ready' });
    // And changes flow again: a revoke after the restart reaches the replica within 2 s.
    const steady = (await admin.list()).find((r) => r.client_id === 'steady')!;
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await traffic;
    await revokeKey(admin, steady.id);
    await waitFor(async () => (await call(key)).status === 401, 2000, 20);

    expect(failures).toBe(0);
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)!).toBeGreaterThan(20);
    expect(svc.logs.some((l) => l.includes('redis reconnected'))).toBe(true);
    // Nothing secret in the logs.
    expect(svc.logs.join('\n')).not.toContain(key);
  });

  it('a config reload while Redis is down keeps serving the keys the previous config knew', async () => {
    const { key } = await createKey(admin, 'pcl', { clientId: 'reloaded' });
    await waitFor(async () => (await call(key)).allowed, 2000, 20);
    await redis.client().save();
    await redis.kill();
    await waitFor(async () => (await metrics()).includes('portcullis_redis_up 0'), 3000, 20);
    const reloadsBefore = svc.logs.filter((l) => l.includes('config reloaded')).length;
    writeFileSync(svc.configFile, config(redis.url).replace('routes:', 'realm: reloaded\nroutes:'));
    await waitFor(() => svc.logs.filter((l) => l.includes('config reloaded')).length > reloadsBefore, 5000, 20);
    const after = await call(key);
    expect(after.status).toBe(200);
    expect((await call(generateApiKey('pcl'))).status).toBe(503);
    await redis.restart();
    await waitFor(async () => (await call(generateApiKey('pcl'))).status === 401, 5000, 50);
    expect((await call(key)).status).toBe(200);
  });

  it('Redis down at start: not ready (readyz names Redis) until it comes up, then ready without a restart', async () => {
    await redis.kill();
    const late = await startService(config(redis.url));
    try {
      const res = await fetch(`${late.httpBase}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { waiting_for: string[] };
      expect(body.waiting_for).toContain(`redis: connecting to redis://127.0.0.1:${redis.port}`);
      // Nothing loaded: any key is 503, never 401 and never allowed.
      expect((await late.envoy({ path: '/v1/orders', headers: { 'x-api-key': generateApiKey('pcl') } })).status).toBe(
        503,
      );
      await redis.restart();
      await waitFor(() => late.service.app.isReady(), 5000, 50);
    } finally {
      await late.stop();
    }
  });
});
