// Opaque tokens end to end: the real oidc-provider issues, introspects and revokes; Portcullis runs
// as a real gRPC server; test/support/envoy.ts applies its answers the way Envoy does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { applyEnvoy, envoyCheckRequest } from '../support/envoy.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';

const INTROSPECT = '/token/introspection';
let idp: TestIdp;
let svc: TestService;

const config = (idpBase: TestIdp) => `
realm: api.example.com
credentials:
  introspection:
    endpoint: ${idpBase.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: \${env:PORTCULLIS_TEST_INTROSPECTION_SECRET}
    audiences: [https://api.example.com]
    issuer: ${idpBase.issuer}
    timeout_ms: 1000 # generous: CI machines are loaded; timeouts are tested in introspector.test.ts
    max_concurrency: 8
    max_per_second: 30
    retry_after_seconds: 3
    cache: { max_ttl_seconds: 2, negative_ttl_seconds: 1 }
routes:
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:write] }
`;

const get = (token: string, extra: Record<string, string> = {}) =>
  svc.envoy({ method: 'GET', path: '/v1/orders/7', headers: { authorization: `Bearer ${token}`, ...extra } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  process.env.PORTCULLIS_TEST_INTROSPECTION_SECRET = INTROSPECTION_CLIENT.client_secret;
  idp = await startIdp({ opaqueTtl: 300 });
  svc = await startService(config(idp));
});
afterAll(async () => {
  await svc?.stop();
  await idp?.close();
});

describe('opaque tokens through the gRPC service', () => {
  it('an active token passes with the trusted headers; spoofed identity headers and the token never reach the upstream', async () => {
    const token = await idp.opaqueAccessToken('orders:read');
    const out = await get(token, { 'x-client-id': 'admin', 'x-scopes': 'orders:write', 'x-user-id': 'root' });
    expect(out.status).toBe(200);
    expect(out.upstreamHeaders['x-client-id']).toBe('test-client');
    expect(out.upstreamHeaders['x-scopes']).toBe('orders:read');
    expect(out.upstreamHeaders['x-auth-method']).toBe('oauth2');
    // client_credentials: no resource owner, so no subject; the spoofed one is gone.
    expect(out.upstreamHeaders['x-user-id']).toBeUndefined();
    expect(out.upstreamHeaders.authorization).toBeUndefined();
    expect(svc.logs.join('')).not.toContain(token);
    expect(svc.logs.join('')).not.toContain(INTROSPECTION_CLIENT.client_secret);
  });

  it("a valid token without the route's scope: 403 insufficient_scope", async () => {
    const token = await idp.opaqueAccessToken('orders:read');
    const out = await svc.envoy({ method: 'POST', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
    expect(out.status).toBe(403);
    expect(out.clientHeaders['www-authenticate']).toBe(
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    );
  });

  it('an unknown token: 401 invalid_token, body without internals', async () => {
    const out = await get('opaque-' + 'x'.repeat(40));
    expect(out.status).toBe(401);
    expect(out.clientHeaders['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_token"');
    expect(JSON.parse(out.body!)).toEqual({ error: 'invalid_token', error_description: 'The credential is invalid' });
  });

  it('a JWT-shaped token (a real one from the provider) is never introspected: no fallback', async () => {
    const jwt = await idp.jwtAccessToken('orders:read');
    const before = idp.requestCount(INTROSPECT);
    const out = await get(jwt);
    expect(out.status).toBe(401);
    expect(out.clientHeaders['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_token"');
    expect(out.response.dynamic_metadata?.fields?.reason?.stringValue).toBe('credential_kind_not_accepted');
    expect(idp.requestCount(INTROSPECT)).toBe(before);
  });

  it('a revoked token is denied once the cache TTL (max_ttl_seconds: 2) has passed', async () => {
    const token = await idp.opaqueAccessToken('orders:read');
    expect((await get(token)).status).toBe(200);
    expect(await idp.revoke(token)).toBe(200);
    // Within max_ttl the cached answer may still serve; after it, never.
    await sleep(2100);
    const out = await get(token);
    expect(out.status).toBe(401);
    expect(out.clientHeaders['www-authenticate']).toContain('error="invalid_token"');
  });

  it('an expired token never passes, even with a cache TTL longer than its life', async () => {
    const shortIdp = await startIdp({ opaqueTtl: 1 });
    const s = await startService(config(shortIdp).replace('max_ttl_seconds: 2', 'max_ttl_seconds: 60'));
    try {
      const token = await shortIdp.opaqueAccessToken('orders:read');
      const first = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect(first.status).toBe(200);
      await sleep(1300);
      const calls = shortIdp.requestCount(INTROSPECT);
      const later = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect(later.status).toBe(401);
      // Not served from the cache: the cached answer ended at the token's exp and the server was asked again.
      expect(shortIdp.requestCount(INTROSPECT)).toBe(calls + 1);
    } finally {
      await s.stop();
      await shortIdp.close();
    }
  });

  it('provider down: 503 temporarily_unavailable with Retry-After for new tokens; cached ones pass until their TTL', async () => {
    const cached = await idp.opaqueAccessToken('orders:read');
    const fresh = await idp.opaqueAccessToken('orders:read');
    expect((await get(cached)).status).toBe(200);
    const cachedAt = Date.now();
    await idp.stop();
    try {
      const denied = await get(fresh);
      expect(denied.status).toBe(503);
      expect(denied.clientHeaders['retry-after']).toBe('3');
      expect(denied.clientHeaders['www-authenticate']).toBeUndefined();
      expect(JSON.parse(denied.body!).error).toBe('temporarily_unavailable');
      const stillCached = await get(cached);
      expect(stillCached.status).toBe(200);
      expect(stillCached.upstreamHeaders['x-client-id']).toBe('test-client');
      await sleep(Math.max(0, cachedAt + 2100 - Date.now()));
      expect((await get(cached)).status).toBe(503);
      const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
      expect(metrics).toMatch(/portcullis_introspection_requests_total\{result="error"\} [1-9]/);
      expect(metrics).toMatch(
        /portcullis_decisions_total\{decision="deny",status="503",reason="introspection_unreachable"/,
      );
      expect(svc.logs.join('')).toContain('introspection endpoint unavailable');
    } finally {
      await idp.start();
    }
    expect((await get(fresh)).status).toBe(200);
  });

  it('a config reload during an outage keeps the cached answers (when nothing that shaped them changed)', async () => {
    const cached = await idp.opaqueAccessToken('orders:read');
    expect((await get(cached)).status).toBe(200);
    const reloads = () => svc.logs.filter((l) => l.includes('config reloaded')).length;
    const before = reloads();
    await idp.stop();
    try {
      writeFileSync(svc.configFile, config(idp).replace('retry_after_seconds: 3', 'retry_after_seconds: 4'));
      await waitFor(() => reloads() > before, 5000, 20);
      expect((await get(cached)).status).toBe(200);
      const fresh = await get('never-seen-' + 'y'.repeat(30));
      expect(fresh.status).toBe(503);
      expect(fresh.clientHeaders['retry-after']).toBe('4');
    } finally {
      await idp.start();
    }
  });

  it('a flood of random tokens becomes a bounded number of introspection calls; a cached token keeps passing', async () => {
    await sleep(1100); // refill the rate bucket after earlier tests
    const good = await idp.opaqueAccessToken('orders:read');
    expect((await get(good)).status).toBe(200);
    const before = idp.requestCount(INTROSPECT);
    const N = 400;
    // A long client deadline: on a loaded 2-core machine 400 concurrent Checks queue in this process.
    const flood = async (token: string) => {
      const req = envoyCheckRequest({
        method: 'GET',
        path: '/v1/orders/7',
        headers: { authorization: `Bearer ${token}` },
      });
      const response = await svc.checkRaw(req, 20_000);
      return { ...applyEnvoy(req, response), response };
    };
    const outs = await Promise.all(
      Array.from({ length: N }, (_, i) => flood(`flood${i}x${Math.random().toString(36).slice(2)}`)),
    );
    const made = idp.requestCount(INTROSPECT) - before;
    const reasons: Record<string, number> = {};
    for (const o of outs) {
      const k = `${o.status} ${o.response.dynamic_metadata?.fields?.reason?.stringValue} ${o.clientHeaders['retry-after'] ?? '-'}`;
      reasons[k] = (reasons[k] ?? 0) + 1;
    }
    const n = (k: string) => reasons[k] ?? 0;
    // Admitted calls end as an answer (401) or a timeout (503): everything here
    // shares one event loop with 400 Checks in flight, so some miss the 150 ms timeout. All the
    // others are refused at once (503, Retry-After 1) and never reach the server.
    const timeouts = Object.entries(reasons)
      .filter(([k]) => k.startsWith('503 introspection_timeout '))
      .reduce((a, [, v]) => a + v, 0);
    const admitted = n('401 token_inactive -') + timeouts;
    const refused = n('503 introspection_rate_limit 1') + n('503 introspection_concurrency_limit 1');
    const detail = JSON.stringify({ made, reasons });
    expect(admitted + refused, detail).toBe(N);
    // max_per_second: 30 (a burst of one second's worth) bounds what is admitted.
    expect(admitted, detail).toBeLessThanOrEqual(30 + 3);
    expect(made, detail).toBeLessThanOrEqual(admitted);
    expect(refused, detail).toBeGreaterThanOrEqual(N - 33);
    expect(outs.filter((o) => o.allowed).length).toBe(0);
    const ok = await get(good);
    expect(ok.status).toBe(200);
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(/portcullis_introspection_refused_total\{limit="(rate|concurrency)"\} \d+/);
  });
});
