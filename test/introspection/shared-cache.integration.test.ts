// Two replicas sharing introspection answers through a real redis-server: what one replica learnt
// from the (real) oidc-provider, the other serves without asking, even while the provider is down,
// and never past the original answer's expiry. The token itself never reaches Redis.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';

const INTROSPECT = '/token/introspection';
let idp: TestIdp;
let redis: TestRedis;
let a: TestService;
let b: TestService;

const config = () => `
redis: { url: "${redis.url}", key_prefix: "intro:" }
credentials:
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    timeout_ms: 1000
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    cache: { max_ttl_seconds: 2, negative_ttl_seconds: 2 }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:read] }
`;

const get = (svc: TestService, token: string) =>
  svc.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  [idp, redis] = await Promise.all([startIdp(), startRedis()]);
  a = await startService(config());
  b = await startService(config());
  await waitFor(
    async () => (await fetch(`${a.httpBase}/readyz`)).ok && (await fetch(`${b.httpBase}/readyz`)).ok,
    10_000,
  );
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await idp?.close();
  await redis?.stop();
});

describe('introspection answers shared through Redis', () => {
  it('replica B serves what replica A learnt, without calling the provider; entries are token hashes and expire with the answer', async () => {
    const token = await idp.opaqueAccessToken('orders:read');
    const before = idp.requestCount(INTROSPECT);
    const first = await get(a, token);
    expect(first.status).toBe(200);
    expect(idp.requestCount(INTROSPECT)).toBe(before + 1);

    // A's write to Redis is not on the Check's path: wait until it landed.
    const cacheKeys = () => redis.client().keys('intro:cache:introspection:*');
    await waitFor(async () => (await cacheKeys()).length === 1, 2000, 10);
    const keys = await redis.client().keys('intro:*');
    expect(keys.some((k) => k.startsWith('intro:cache:introspection:'))).toBe(true);
    const dump = JSON.stringify(await Promise.all(keys.map((k) => redis.client().get(k))));
    expect(keys.join()).not.toContain(token);
    expect(dump).not.toContain(token);
    const ttl = await redis.client().pttl(keys.find((k) => k.startsWith('intro:cache:introspection:'))!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);

    await idp.stop();
    try {
      const second = await get(b, token);
      expect(second.status).toBe(200);
      expect(second.upstreamHeaders['x-client-id']).toBe('test-client');
      expect(second.upstreamHeaders['x-scopes']).toBe('orders:read');
      // After the original answer's max_ttl, neither replica has it: the provider is down, so 503.
      await new Promise((r) => setTimeout(r, 2100));
      expect((await get(b, token)).status).toBe(503);
      expect((await get(a, token)).status).toBe(503);
    } finally {
      await idp.start();
    }
    const metrics = await (await fetch(`${b.httpBase}/metrics`)).text();
    expect(metrics).toContain('portcullis_introspection_cache_hits_total{type="shared_positive"} 1');
  });

  it('an inactive answer is shared too', async () => {
    const bogus = 'bogus-token-' + Math.random().toString(36).slice(2);
    const before = idp.requestCount(INTROSPECT);
    const count = async () => (await redis.client().keys('intro:cache:introspection:*')).length;
    const n = await count();
    expect((await get(a, bogus)).status).toBe(401);
    await waitFor(async () => (await count()) === n + 1, 2000, 10);
    expect((await get(b, bogus)).status).toBe(401);
    expect(idp.requestCount(INTROSPECT)).toBe(before + 1);
  });
});
