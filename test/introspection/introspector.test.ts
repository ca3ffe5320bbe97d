// The introspection component against the real oidc-provider (its RFC 7662 endpoint), with the
// cache's clock under test control: cache lifetimes, single flight, admission limits, outages,
// client authentication methods.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyUnavailableError, InvalidCredentialError } from '../../src/core/errors.ts';
import { createIntrospection } from '../../src/credentials/introspection/component.ts';
import { parseConfig } from '../../src/policy/load.ts';
import type { IntrospectionConfig } from '../../src/policy/schema.ts';
import { DEFAULT_CLIENT, INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';

const POST_CLIENT = {
  client_id: 'gateway-post',
  client_secret: 'gateway-post-secret-0123456789',
  token_endpoint_auth_method: 'client_secret_post' as const,
};
const INTROSPECT = '/token/introspection';

let idp: TestIdp;
beforeAll(async () => {
  idp = await startIdp({ clients: [DEFAULT_CLIENT, INTROSPECTION_CLIENT, POST_CLIENT], opaqueTtl: 300 });
});
afterAll(async () => {
  await idp?.close();
});

// A generous default timeout: CI machines are loaded; the timeout itself has its own test.
function config(extra = '', timeoutMs = 3000): IntrospectionConfig {
  const yaml = `
credentials:
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    timeout_ms: ${timeoutMs}
    ${extra}`;
  return parseConfig(yaml).credentials.introspection!;
}

function make(cfg: IntrospectionConfig) {
  let now = Date.now();
  const lines: string[] = [];
  const registry = new Registry();
  const c = createIntrospection(cfg, {
    log: pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) }),
    registry,
    now: () => now,
    resolvePath: (p) => p,
  });
  return {
    introspect: c.introspect,
    close: c.close,
    advance: (ms: number) => void (now += ms),
    setNow: (ms: number) => void (now = ms),
    lines,
    metric: async (name: string) => (await registry.getSingleMetric(name)!.get()).values,
  };
}

const calls = () => idp.requestCount(INTROSPECT);
const reasonOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'allowed';
  } catch (e) {
    if (e instanceof InvalidCredentialError) return `invalid:${e.reason}`;
    if (e instanceof DependencyUnavailableError) return `unavailable:${e.reason}:${e.retryAfterSeconds}`;
    return `other:${(e as Error).message}`;
  }
};

describe('introspection component (real oidc-provider)', () => {
  it('maps an active opaque token (client_secret_basic) and caches it until max_ttl, keyed by the whole token', async () => {
    const c = make(config('cache: { max_ttl_seconds: 30 }'));
    const token = await idp.opaqueAccessToken('orders:read orders:write');
    const before = calls();
    const id = await c.introspect(token);
    expect(id).toMatchObject({
      method: 'oauth2',
      clientId: 'test-client',
      scopes: ['orders:read', 'orders:write'],
      issuer: idp.issuer,
    });
    expect(id.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(await c.introspect(token)).toBe(id);
    expect(calls() - before).toBe(1);
    // A token differing in its last character is another token: not served from the cache.
    const sibling = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(await reasonOf(c.introspect(sibling))).toBe('invalid:token_inactive');
    expect(calls() - before).toBe(2);
    // Revoked at the server: still cached until max_ttl, then denied.
    expect(await idp.revoke(token)).toBe(200);
    c.advance(29_000);
    expect(await c.introspect(token)).toBe(id);
    c.advance(1_001);
    expect(await reasonOf(c.introspect(token))).toBe('invalid:token_inactive');
    expect(calls() - before).toBe(3);
    expect(await c.metric('portcullis_introspection_cache_hits_total')).toEqual([
      { labels: { type: 'positive' }, value: 2 },
    ]);
    c.close();
  });

  it("never serves a cached answer past the token's exp", async () => {
    const c = make(config('cache: { max_ttl_seconds: 3600 }'));
    const token = await idp.opaqueAccessToken();
    const id = await c.introspect(token);
    const before = calls();
    c.setNow((id.expiresAt! + 1) * 1000);
    // The cache entry is gone; the server (on real time) still says active, but our own clock
    // says the answer's exp has passed: rejected.
    expect(await reasonOf(c.introspect(token))).toBe('invalid:token_expired');
    expect(calls() - before).toBe(1);
    c.close();
  });

  it('inactive answers are cached for negative_ttl', async () => {
    const c = make(config('cache: { negative_ttl_seconds: 5 }'));
    const before = calls();
    expect(await reasonOf(c.introspect('not-a-token-' + Math.random()))).toBe('invalid:token_inactive');
    const t = 'unknown-' + Math.random();
    expect(await reasonOf(c.introspect(t))).toBe('invalid:token_inactive');
    expect(await reasonOf(c.introspect(t))).toBe('invalid:token_inactive');
    expect(calls() - before).toBe(2);
    c.advance(5_001);
    expect(await reasonOf(c.introspect(t))).toBe('invalid:token_inactive');
    expect(calls() - before).toBe(3);
    c.close();
  });

  it('single flight: concurrent lookups of one token make one call', async () => {
    const c = make(config());
    const token = await idp.opaqueAccessToken();
    idp.setLatency(50);
    try {
      const before = calls();
      const ids = await Promise.all(Array.from({ length: 25 }, () => c.introspect(token)));
      expect(new Set(ids).size).toBe(1);
      expect(calls() - before).toBe(1);
    } finally {
      idp.setLatency(0);
    }
    c.close();
  });

  it('client_secret_post authenticates in the body; a wrong secret is a 503 that names the config to fix, never a 401 for the caller', async () => {
    // With client_secret_post no Authorization header is sent: the server can only have
    // authenticated us from the form body.
    const token = await idp.opaqueAccessToken();
    const cfg = config();
    cfg.client_id = POST_CLIENT.client_id;
    cfg.client_secret = POST_CLIENT.client_secret;
    cfg.auth_method = 'client_secret_post';
    const ok = make(cfg);
    expect(await ok.introspect(token)).toMatchObject({ clientId: 'test-client' });
    ok.close();

    const bad = make({ ...config(), client_secret: 'wrong-secret-value' });
    expect(await reasonOf(bad.introspect(token))).toBe('unavailable:introspection_http_status:5');
    const log = bad.lines.join('');
    expect(log).toContain('credentials.introspection.client_id, client_secret and auth_method');
    expect(log).not.toContain('wrong-secret-value');
    expect(log).not.toContain(token);
    bad.close();
  });

  it('a slow endpoint times out inside the Check deadline: 503, never allow', async () => {
    const c = make(config('', 120));
    const token = await idp.opaqueAccessToken();
    idp.setLatency(400);
    try {
      const t0 = performance.now();
      expect(await reasonOf(c.introspect(token))).toBe('unavailable:introspection_timeout:5');
      // The 400 ms answer is not awaited: the call ends at timeout_ms (plus event-loop lag on a
      // loaded CI machine).
      expect(performance.now() - t0).toBeLessThan(350);
    } finally {
      idp.setLatency(0);
    }
    expect(await c.metric('portcullis_introspection_requests_total')).toEqual([
      { labels: { result: 'timeout' }, value: 1 },
    ]);
    c.close();
  });

  it('the endpoint down: 503 with Retry-After for uncached tokens, cached ones keep passing until their TTL', async () => {
    const c = make(config('retry_after_seconds: 7\n    cache: { max_ttl_seconds: 10 }'));
    const cachedToken = await idp.opaqueAccessToken();
    const fresh = await idp.opaqueAccessToken();
    const id = await c.introspect(cachedToken);
    await idp.stop();
    try {
      expect(await reasonOf(c.introspect(fresh))).toBe('unavailable:introspection_unreachable:7');
      expect(await c.introspect(cachedToken)).toBe(id);
      c.advance(10_001);
      expect(await reasonOf(c.introspect(cachedToken))).toBe('unavailable:introspection_unreachable:7');
      expect(c.lines.join('')).toContain('introspection endpoint unavailable (credentials.introspection.endpoint)');
    } finally {
      await idp.start();
    }
    expect(await c.introspect(fresh)).toMatchObject({ clientId: 'test-client' });
    c.close();
  });

  it('bounded: a flood of random tokens makes at most max_per_second calls; the rest are 503 at once', async () => {
    const c = make(config('max_per_second: 20\n    max_concurrency: 8'));
    const before = calls();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => reasonOf(c.introspect(`flood-${i}-${Math.random()}`))),
    );
    const counts: Record<string, number> = {};
    for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
    // At most 8 in flight at once (and 20 per second): the rest never reach the server.
    expect(calls() - before).toBeLessThanOrEqual(8);
    expect(counts['invalid:token_inactive']).toBe(calls() - before);
    expect(counts['unavailable:introspection_concurrency_limit:1']).toBe(300 - (calls() - before));
    expect(counts.allowed).toBeUndefined();

    // Sequentially, the rate bucket is the limit: 20 per second of (test) clock.
    const mid = calls();
    const seq: string[] = [];
    for (let i = 0; i < 40; i++) seq.push(await reasonOf(c.introspect(`seq-${i}-${Math.random()}`)));
    expect(calls() - mid).toBeLessThanOrEqual(20);
    expect(seq.filter((r) => r === 'unavailable:introspection_rate_limit:1').length).toBe(40 - (calls() - mid));
    c.advance(1000);
    expect(await reasonOf(c.introspect(`after-${Math.random()}`))).toBe('invalid:token_inactive');
    c.close();
  });
});
