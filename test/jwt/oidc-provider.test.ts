// The real thing end to end: oidc-provider issues RFC 9068 JWT access tokens with
// client_credentials; Portcullis finds its keys by OIDC discovery and verifies them through the
// real gRPC server. Key rotation while traffic flows; the provider stopped after warm-up.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, waitFor, type TestService } from '../support/service.ts';
import { DEFAULT_RESOURCE, startIdp, type TestIdp } from '../support/idp.ts';

const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';

let idp: TestIdp;
let svc: TestService;

function config(issuer: string, extra = ''): string {
  return `
realm: api.example.com
credentials:
  jwt:
    - issuer: ${issuer}
      audiences: [${DEFAULT_RESOURCE}]
      discovery: true
      allow_http: true
      algorithms: [RS256, ES256]
      jwks_cooldown_seconds: 1
      jwks_refresh_seconds: 1
      fetch_timeout_ms: 500
      unknown_kid_wait_ms: 150
${extra}
routes:
  - name: orders-read
    match: { methods: [GET], path_prefix: /v1/orders }
    auth: [jwt]
    scopes: [orders:read]
  - name: orders-write
    match: { methods: [POST], path_prefix: /v1/orders }
    auth: [jwt]
    scopes: [orders:write]
`;
}

async function ask(token: string, method = 'GET') {
  const out = await svc.envoy({ method, path: '/v1/orders/7', headers: { authorization: `Bearer ${token}` } });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
}

async function metrics(): Promise<string> {
  return (await fetch(`${svc.httpBase}/metrics`)).text();
}

function metricValue(text: string, line: string): number | undefined {
  const at = text.split('\n').find((l) => l.startsWith(line + ' '));
  return at === undefined ? undefined : Number(at.slice(line.length + 1));
}

beforeAll(async () => {
  idp = await startIdp();
  svc = await startService(config(idp.issuer));
});

afterAll(async () => {
  await svc?.stop();
  await idp?.close();
});

describe('tokens from a real oidc-provider, keys by discovery', () => {
  it('is ready once the keys are loaded, and read them through discovery', async () => {
    const r = await fetch(`${svc.httpBase}/readyz`);
    expect(r.status).toBe(200);
    expect(idp.requestCount('/.well-known/openid-configuration')).toBeGreaterThanOrEqual(1);
    expect(idp.requestCount('/jwks')).toBeGreaterThanOrEqual(1);
  });

  it('accepts a client_credentials at+jwt token and maps sub, client_id and scope', async () => {
    const token = await idp.jwtAccessToken('orders:read orders:write');
    const out = await ask(token);
    expect({ status: out.status, reason: out.reason }).toEqual({ status: 200, reason: 'allowed' });
    expect(out.upstreamHeaders['x-client-id']).toBe('test-client');
    expect(out.upstreamHeaders['x-user-id']).toBe('test-client');
    expect(out.upstreamHeaders['x-scopes']).toBe('orders:read orders:write');
    expect(out.upstreamHeaders['x-auth-method']).toBe('jwt');
    expect(out.upstreamHeaders.authorization).toBeUndefined();
  });

  it("answers 403 insufficient_scope for a real token without the route's scope", async () => {
    const token = await idp.jwtAccessToken('orders:read');
    const out = await ask(token, 'POST');
    expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'] }).toEqual({
      status: 403,
      challenge: 'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    });
  });

  it("refuses the provider's own token for another audience, and its opaque tokens are not JWTs", async () => {
    const other = await startIdp({
      resources: { 'https://other.example.com': { scope: 'orders:read', format: 'jwt' } },
    });
    try {
      const foreign = await other.jwtAccessToken('orders:read', 'https://other.example.com');
      const out = await ask(foreign);
      expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
        status: 401,
        challenge: INVALID,
        reason: 'jwt_issuer_unknown',
      });
    } finally {
      await other.close();
    }
    // An opaque token is routed to introspection (not configured here, so not accepted as a JWT).
    const opaque = await idp.opaqueAccessToken('orders:read');
    const out = await ask(opaque);
    expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'] }).toEqual({
      status: 401,
      challenge: INVALID,
    });
  });
});

describe('key rotation at the provider while traffic flows', () => {
  it('keeps every valid token passing across a rotation, then refuses tokens of a retired key', async () => {
    const oldToken = await idp.jwtAccessToken('orders:read');
    expect((await ask(oldToken)).status).toBe(200);

    let stop = false;
    const results: Array<{ status: number; reason?: string; which: string }> = [];
    const fresh: string[] = [];
    const traffic = (async () => {
      while (!stop) {
        const batch = [oldToken, ...fresh.slice(-3)];
        const outs = await Promise.all(batch.map((t) => ask(t)));
        outs.forEach((o, i) => results.push({ status: o.status, reason: o.reason, which: i === 0 ? 'old' : 'new' }));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const minter = (async () => {
      while (!stop) {
        fresh.push(await idp.jwtAccessToken('orders:read'));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await new Promise((r) => setTimeout(r, 300));
    const newKid = await idp.rotateKeys();
    // Tokens signed by the new key appear at once; Portcullis learns the kid on first sight.
    await waitFor(async () => {
      const t = fresh.at(-1);
      return !!t && JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()).kid === newKid;
    });
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await Promise.all([traffic, minter]);

    const newKeyTokens = fresh.filter(
      (t) => JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()).kid === newKid,
    );
    expect(newKeyTokens.length).toBeGreaterThan(3);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect((await ask(newKeyTokens.at(-1)!)).status).toBe(200);

    // The provider retires the old key: once the JWKS no longer has it (background refresh every
    // second), the old token stops passing even though it was cached as verified.
    await idp.dropOldKeys();
    await waitFor(async () => (await ask(oldToken)).status === 401, 5000, 100);
    const out = await ask(oldToken);
    expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
      status: 401,
      challenge: INVALID,
      reason: 'jwt_kid_unknown',
    });
    expect((await ask(newKeyTokens.at(-1)!)).status).toBe(200);
  });
});

describe('provider outage after warm-up', () => {
  it('keeps valid tokens passing (cached and never seen) with the last good keys; metrics and logs say so; recovers', async () => {
    const seen = await idp.jwtAccessToken('orders:read');
    const unseen = await idp.jwtAccessToken('orders:read');
    expect((await ask(seen)).status).toBe(200);

    await idp.stop();
    // Background refresh (every second) notices the outage.
    await waitFor(
      async () => metricValue(await metrics(), `portcullis_jwks_stale{issuer="${idp.issuer}"}`) === 1,
      5000,
      100,
    );
    for (let i = 0; i < 5; i++) expect((await ask(seen)).status).toBe(200);
    const out = await ask(unseen);
    expect({ status: out.status, reason: out.reason }).toEqual({ status: 200, reason: 'allowed' });

    const text = await metrics();
    expect(
      metricValue(text, `portcullis_jwks_fetches_total{issuer="${idp.issuer}",trigger="refresh",result="failure"}`),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, `portcullis_jwks_keys_age_seconds{issuer="${idp.issuer}"}`)).toBeGreaterThan(0);
    expect(svc.logs.some((l) => l.includes('JWKS refresh failed: the last good keys keep serving'))).toBe(true);
    // Ready stays 200: last good keys serve.
    expect((await fetch(`${svc.httpBase}/readyz`)).status).toBe(200);

    // A config reload during the outage starts a new verifier from the last good keys, not from nothing.
    const reloads = svc.logs.filter((l) => l.includes('config reloaded')).length;
    writeFileSync(svc.configFile, config(idp.issuer, '      clock_skew_seconds: 30'));
    await waitFor(() => svc.logs.filter((l) => l.includes('config reloaded')).length > reloads, 5000, 50);
    expect((await fetch(`${svc.httpBase}/readyz`)).status).toBe(200);
    const unseenAfterReload = await ask(unseen);
    expect({ status: unseenAfterReload.status, reason: unseenAfterReload.reason }).toEqual({
      status: 200,
      reason: 'allowed',
    });

    await idp.start();
    await waitFor(
      async () => metricValue(await metrics(), `portcullis_jwks_stale{issuer="${idp.issuer}"}`) === 0,
      8000,
      100,
    );
    expect((await ask(await idp.jwtAccessToken('orders:read'))).status).toBe(200);
  });
});

describe('readiness waits for the keys', () => {
  it('is 503 with a clear reason while the issuer is down at start, and becomes ready when it comes up', async () => {
    const late = await startIdp();
    const token = await late.jwtAccessToken('orders:read');
    await late.stop();
    const s = await startService(config(late.issuer));
    try {
      const r = await fetch(`${s.httpBase}/readyz`);
      expect(r.status).toBe(503);
      const body = (await r.json()) as { waiting_for: string[] };
      expect(body.waiting_for.join(' ')).toContain(
        `jwks ${late.issuer}: keys not loaded from credentials.jwt[0].discovery`,
      );
      expect(body.waiting_for.join(' ')).toContain('ECONNREFUSED');
      expect(s.logs.some((l) => l.includes('JWKS could not be loaded') && l.includes('credentials.jwt[0]'))).toBe(true);
      const early = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect({ status: early.status, reason: early.response.dynamic_metadata?.fields?.reason?.stringValue }).toEqual({
        status: 503,
        reason: 'jwks_not_loaded',
      });

      await late.start();
      await waitFor(async () => (await fetch(`${s.httpBase}/readyz`)).status === 200, 8000, 100);
      const out = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect(out.status).toBe(200);
      expect(s.logs.join('\n').includes(token)).toBe(false);
    } finally {
      await s.stop();
      await late.close();
    }
  });
});
