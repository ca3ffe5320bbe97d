// The DPoP replay cache shared through a real redis-server: two replicas act as one (a proof one
// accepted is a replay on the other), and when Redis is down `on_redis_error` decides: deny (the
// default) answers 503 with Retry-After, allow lets the replica's memory alone decide.
// @module-tag redis-server
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, type TestKey } from '../jwt/helpers.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';
import { accessToken, craftProof, outcome, proofKey, type ProofKey } from './helpers.ts';

const ISS = 'https://idp.dpop-redis.test';
const AUD = 'https://api.example.com';
const HTU = 'https://api.example.com/v1/orders';

let redis: TestRedis;
let a: TestService;
let b: TestService;
let lenient: TestService;
let key: TestKey;
let client: ProofKey;
let token: string;

const config = (redisUrl: string, onRedisError?: string) => `
redis: { url: "${redisUrl}", key_prefix: "pop:", connect_timeout_ms: 300, command_timeout_ms: 300 }
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${AUD}"], jwks_file: jwks.json, algorithms: [ES256] }
  dpop: { algorithms: [ES256]${onRedisError ? `, on_redis_error: ${onRedisError}` : ''} }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [jwt] }
`;

async function replica(onRedisError?: string): Promise<TestService> {
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  return startService(config(redis.url, onRedisError), { dir });
}

beforeAll(async () => {
  key = await makeKey('r-1', 'ES256');
  client = await proofKey();
  token = accessToken({ iss: ISS, aud: AUD, key }, { cnf: { jkt: client.jkt } });
  redis = await startRedis();
  [a, b, lenient] = await Promise.all([replica(), replica(), replica('allow')]);
  await waitFor(
    async () => a.service.app.isReady() && b.service.app.isReady() && lenient.service.app.isReady(),
    10_000,
  );
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), lenient?.stop()]);
  await redis?.stop();
});

const proof = () => craftProof(client, { htm: 'GET', htu: HTU, token });
const send = async (svc: TestService, p: string) =>
  outcome(await svc.envoy({ path: '/v1/orders', headers: { authorization: `DPoP ${token}`, dpop: p } }));

describe('two replicas, one redis-server', () => {
  it('a proof accepted by one replica is a replay on the other, and on itself', async () => {
    const p = await proof();
    expect((await send(a, p)).status).toBe(200);
    expect(await send(b, p)).toMatchObject({ status: 401, reason: 'dpop_replayed', error: 'invalid_dpop_proof' });
    expect(await send(a, p)).toMatchObject({ status: 401, reason: 'dpop_replayed' });
    // One key in Redis per proof, a hash (neither jti nor key stored), expiring with the proof.
    const keys = await redis.client().keys('pop:dpop:jti:*');
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const k of keys) {
      expect(k).toMatch(/^pop:dpop:jti:[A-Za-z0-9_-]{43}$/);
      const ttl = await redis.client().pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(66_000);
    }
  });

  it('concurrent use of one proof on both replicas: exactly one is accepted', async () => {
    const p = await proof();
    const results = await Promise.all([send(a, p), send(b, p), send(a, p), send(b, p)]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.reason === 'dpop_replayed')).toHaveLength(3);
  });

  it('Redis down: on_redis_error deny (default) answers 503 with Retry-After; allow decides on memory', async () => {
    await redis.kill();
    try {
      const denied = await a.envoy({
        path: '/v1/orders',
        headers: { authorization: `DPoP ${token}`, dpop: await proof() },
      });
      expect(denied.status).toBe(503);
      expect(JSON.parse(denied.body!).error).toBe('temporarily_unavailable');
      expect(denied.clientHeaders['retry-after']).toMatch(/^\d+$/);
      expect(['redis_unavailable', 'redis_timeout', 'redis_error']).toContain(
        denied.response.dynamic_metadata?.fields?.reason?.stringValue,
      );
      const p = await proof();
      expect((await send(lenient, p)).status).toBe(200);
      // Its own memory still catches a replay on the same replica.
      expect((await send(lenient, p)).reason).toBe('dpop_replayed');
      const metrics = await (await fetch(`${lenient.httpBase}/metrics`)).text();
      expect(metrics).toMatch(/portcullis_dpop_replay_failopen_total [1-9]/);
    } finally {
      await redis.restart();
    }
    await waitFor(async () => (await send(a, await proof())).status === 200, 10_000, 200);
  });
});
