// Policy beyond scopes over gRPC with Envoy's protos (docs/policy.md): CEL conditions on real JWTs
// (signed, verified with a JWKS file) and on introspected tokens (a local RFC 7662 endpoint), path
// templates, host wildcards, headers from claims, shadow mode; and hostile claims: a 1 MB claim set,
// nesting 100 deep, CR/LF in a claim, a condition on a missing claim, an encoded / in a template value.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, nowSeconds, signRaw, type TestKey } from '../jwt/helpers.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';

const ISS = 'https://idp.policy.test';
const AUD = 'https://api.example.com';
const FORBIDDEN = JSON.stringify({ error: 'forbidden', error_description: 'Access to this resource is forbidden' });

let svc: TestService;
let key: TestKey;
let introspection: Server;
const presented: string[] = [];

/** Introspection answers by token: an RFC 7662 endpoint of our own, over real HTTP. */
const answers: Record<string, () => unknown> = {
  'op-ok': () => ({
    active: true,
    token_type: 'Bearer',
    sub: 'carol',
    client_id: 'svc',
    scope: 'orders:read',
    tenant: 'acme',
  }),
  'op-big': () => ({
    active: true,
    token_type: 'Bearer',
    sub: 'carol',
    scope: 'orders:read',
    tenant: 'acme',
    blob: Array.from({ length: 16_384 }, (_, i) => `group-${i}-${'x'.repeat(50)}`), // about 1 MB
  }),
  'op-40k': () => ({
    active: true,
    token_type: 'Bearer',
    sub: 'carol',
    scope: 'orders:read',
    tenant: 'acme',
    blob: 'x'.repeat(40_000), // over the 32 KiB claims bound, under the client's 64 KiB answer bound
  }),
  'op-deep': () => {
    let deep: unknown = 'acme';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    return { active: true, token_type: 'Bearer', sub: 'carol', scope: 'orders:read', tenant: 'acme', deep };
  },
  'op-crlf': () => ({
    active: true,
    token_type: 'Bearer',
    sub: 'carol',
    scope: 'orders:read',
    tenant: 'acme',
    team: 'a\r\nx-admin: true',
  }),
};

beforeAll(async () => {
  introspection = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answers[token]?.() ?? { active: false }));
    });
  });
  await new Promise<void>((r) => introspection.listen(0, '127.0.0.1', r));
  const port = (introspection.address() as AddressInfo).port;

  key = await makeKey('pol-1', 'ES256');
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  svc = await startService(
    `
realm: api.example.com
headers:
  set:
    x-user-id: subject
    x-client-id: client_id
    x-auth-method: method
    x-tenant: claims.tenant
    x-team: claims.team
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${AUD}"], jwks_file: jwks.json, algorithms: [ES256] }
  introspection:
    endpoint: http://127.0.0.1:${port}/introspect
    allow_http: true
    client_id: gw
    client_secret: s
    allow_any_audience: true
routes:
  - name: status
    public: true
    match: { path: /status }
    when: ["request.source_ip.inCidr(['10.0.0.0/8'])"]
  - name: env
    public: true
    match: { path: /env }
    when: ["'x-env' in request.headers && request.headers['x-env'] == 'prod' && request.query.limit == '5'"]
  - name: tenant-orders
    match: { path_template: "/v1/tenants/{tenant}/orders/{id}" }
    auth: [jwt, oauth2]
    scopes: [orders:read]
    when:
      - { name: own-tenant, expr: "request.params.tenant == identity.claims.tenant" }
      - name: admin-writes
        expr: "request.method == 'GET' || (has(identity.claims.roles) && 'admin' in identity.claims.roles)"
  - name: tenant-app
    match: { host: "*.apps.example.com" }
    auth: [jwt]
    when: ["request.host == identity.claims.tenant + '.apps.example.com'"]
  - name: beta
    mode: shadow
    match: { path_prefix: /v1/beta }
    auth: [jwt]
    when: [{ name: beta-tester, expr: "has(identity.claims.beta) && identity.claims.beta == true" }]
`,
    { dir },
  );
});

afterAll(async () => {
  await svc?.stop();
  await new Promise((r) => introspection?.close(r));
});

function jwt(claims: Record<string, unknown>): string {
  const now = nowSeconds();
  const t = signRaw(
    { alg: 'ES256', typ: 'at+jwt', kid: 'pol-1' },
    {
      iss: ISS,
      aud: AUD,
      sub: 'alice',
      client_id: 'web',
      scope: 'orders:read',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      ...claims,
    },
    key.privateKey,
    'ES256',
  );
  presented.push(t);
  return t;
}

const ask = (
  token: string,
  path: string,
  more: { method?: string; host?: string; headers?: Record<string, string> } = {},
) =>
  svc.envoy({
    method: more.method ?? 'GET',
    path,
    host: more.host,
    headers: { authorization: `Bearer ${token}`, 'x-user-id': 'root', 'x-tenant': 'globex', ...more.headers },
  });

function expectForbidden(out: Awaited<ReturnType<typeof ask>>) {
  expect(out.allowed).toBe(false);
  expect(out.status).toBe(403);
  // The client learns nothing of which condition: the catalog's body, nothing else.
  expect(out.body).toBe(FORBIDDEN);
  expect(JSON.stringify(out.clientHeaders)).not.toMatch(/own-tenant|admin-writes|when/);
}

/** The last decision log line for a reason. */
function logLine(reason: string): Record<string, unknown> {
  const lines = svc.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reason === reason);
  return lines[lines.length - 1];
}

describe('conditions over gRPC', () => {
  it('tenant isolation by path with a real JWT; the tenant header comes from the claim, never the client', async () => {
    const own = await ask(jwt({ tenant: 'acme' }), '/v1/tenants/acme/orders/7');
    expect(own.allowed).toBe(true);
    expect(own.upstreamHeaders['x-tenant']).toBe('acme');
    expect(own.upstreamHeaders['x-user-id']).toBe('alice');

    const other = await ask(jwt({ tenant: 'acme' }), '/v1/tenants/globex/orders/7');
    expectForbidden(other);
    // Which condition goes to the log and the metrics, with the route.
    expect(logLine('condition_failed')).toMatchObject({ route: 'tenant-orders', condition: 'own-tenant', status: 403 });
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(
      /portcullis_condition_denies_total\{route="tenant-orders",condition="own-tenant",result="false"\} [1-9]/,
    );
  });

  it('admin-only methods by role', async () => {
    expectForbidden(
      await ask(jwt({ tenant: 'acme', roles: ['viewer'] }), '/v1/tenants/acme/orders/7', { method: 'DELETE' }),
    );
    expect(logLine('condition_failed')).toMatchObject({ condition: 'admin-writes' });
    const admin = await ask(jwt({ tenant: 'acme', roles: ['admin'] }), '/v1/tenants/acme/orders/7', {
      method: 'DELETE',
    });
    expect(admin.allowed).toBe(true);
  });

  it('a condition on a missing claim: 403 condition_error, the CEL code in the log only', async () => {
    const out = await ask(jwt({}), '/v1/tenants/acme/orders/7');
    expectForbidden(out);
    expect(logLine('condition_error')).toMatchObject({ condition: 'own-tenant (no_such_key)' });
  });

  it('an encoded / in a template value: 400 before any route, nothing upstream', async () => {
    for (const p of ['/v1/tenants/acme%2Fglobex/orders/7', '/v1/tenants/acme/orders/7%2f8']) {
      const out = await ask(jwt({ tenant: 'acme/globex' }), p);
      expect(out.allowed).toBe(false);
      expect(out.status).toBe(400);
    }
  });

  it('tenant isolation by host: *.apps.example.com, one label, own tenant', async () => {
    const t = jwt({ tenant: 'acme' });
    expect((await ask(t, '/', { host: 'acme.apps.example.com' })).allowed).toBe(true);
    expect((await ask(t, '/', { host: 'ACME.apps.example.com:443' })).allowed).toBe(true);
    expectForbidden(await ask(t, '/', { host: 'globex.apps.example.com' }));
    const deeper = await ask(t, '/', { host: 'acme.x.apps.example.com' });
    expect(deeper.status).toBe(403);
    expect(logLine('no_route')).toBeDefined();
  });

  it('request.headers and request.query as the codec decodes them (a header map, the raw query)', async () => {
    const env = (path: string, headers: Array<[string, string]>) => svc.envoy({ path, headers });
    expect((await env('/env?limit=5', [['X-Env', 'prod']])).allowed).toBe(true);
    expect((await env('/env?limit=5', [['x-env', 'dev']])).status).toBe(403);
    expect((await env('/env?limit=5&limit=6', [['x-env', 'prod']])).status).toBe(403);
    expect((await env('/env?limit=5', [])).status).toBe(403);
    expect((await env('/env?limit=5', [['x-env', 'prod']])).allowed).toBe(true);
  });

  it('an IP allow-list on a public route: no credential, identity absent', async () => {
    const inside = await svc.envoy({ path: '/status', sourceIp: '10.9.8.7' });
    expect(inside.allowed).toBe(true);
    const outside = await svc.envoy({ path: '/status', sourceIp: '192.0.2.1' });
    expect(outside.status).toBe(403);
  });
});

describe('introspected tokens: the answer is the claims', () => {
  it('its members are identity.claims', async () => {
    const out = await ask('op-ok', '/v1/tenants/acme/orders/7');
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders['x-tenant']).toBe('acme');
    expect(out.upstreamHeaders['x-user-id']).toBe('carol');
  });

  it.each([
    ['a 40 KB claim set', 'op-40k', 401, 'claims_too_large'],
    ['claims nested 100 deep', 'op-deep', 401, 'claims_too_deep'],
    // Refused while it is read, before it is parsed: the endpoint's answer is unusable (503), never an allow.
    ['a 1 MB claim set', 'op-big', 503, 'introspection_response_too_large'],
  ])('%s: %s, reason %s, nothing upstream', async (_name, token, status, reason) => {
    const out = await ask(token, '/v1/tenants/acme/orders/7');
    expect(out.allowed).toBe(false);
    expect(out.status).toBe(status);
    if (status === 401)
      expect(out.clientHeaders['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_token"');
    expect(logLine(reason)).toBeDefined();
  });

  it('a 1 MB claim set in a JWT: refused by its size before anything is parsed', async () => {
    const out = await ask(jwt({ blob: 'x'.repeat(1024 * 1024) }), '/v1/tenants/acme/orders/7');
    expect(out.allowed).toBe(false);
    expect(out.status).toBe(401);
    expect(logLine('credential_too_large')).toBeDefined();
  });

  it('a claim with CR/LF: 401 identity_value_unsafe, never a header', async () => {
    const out = await ask('op-crlf', '/v1/tenants/acme/orders/7');
    expect(out.allowed).toBe(false);
    expect(out.status).toBe(401);
    expect(JSON.stringify(out.clientHeaders)).not.toContain('x-admin');
    expect(logLine('identity_value_unsafe')).toBeDefined();
  });
});

describe('shadow mode over gRPC', () => {
  it('a would-be deny: Envoy gets an allow with no identity header, the client headers and the token removed', async () => {
    const out = await ask(jwt({ tenant: 'acme' }), '/v1/beta/feature');
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders['x-user-id']).toBeUndefined();
    expect(out.upstreamHeaders['x-tenant']).toBeUndefined();
    expect(out.upstreamHeaders.authorization).toBeUndefined();
    expect(logLine('shadow')).toMatchObject({
      route: 'beta',
      status: 200,
      shadow: true,
      would_status: 403,
      would_reason: 'condition_failed',
      condition: 'beta-tester',
      // Who would have been refused: the client id, as on any deny line; never a claim.
      client_id: 'web',
      credential: 'jwt',
    });
  });

  it('a forged token on a shadow route: still no identity header', async () => {
    const out = await ask(`${jwt({ beta: true }).slice(0, -4)}AAAA`, '/v1/beta/feature');
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders['x-user-id']).toBeUndefined();
    expect(logLine('shadow')).toMatchObject({ would_status: 401, shadow: true });
  });

  it('a would-be allow carries the identity; both are counted', async () => {
    const out = await ask(jwt({ beta: true }), '/v1/beta/feature');
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders['x-user-id']).toBe('alice');
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(/portcullis_shadow_decisions_total\{route="beta",would="allowed"\} [1-9]/);
    expect(metrics).toMatch(/portcullis_shadow_decisions_total\{route="beta",would="condition_failed"\} [1-9]/);
  });
});

describe('reload', () => {
  it('a reload with a condition that does not compile is rejected with its path; the old policy keeps serving', async () => {
    const good = readFileSync(svc.configFile, 'utf8');
    writeFileSync(
      svc.configFile,
      good.replace('request.params.tenant == identity.claims.tenant', 'request.params.tenant =='),
    );
    await waitFor(() => svc.logs.some((l) => l.includes('config reload rejected')), 5000);
    const rejected = JSON.parse(svc.logs.find((l) => l.includes('config reload rejected'))!) as { problems: string[] };
    expect(rejected.problems.join('\n')).toMatch(/^routes\[2\]\.when\[0\]: /m);
    expectForbidden(await ask(jwt({ tenant: 'acme' }), '/v1/tenants/globex/orders/7'));
    expect((await ask(jwt({ tenant: 'acme' }), '/v1/tenants/acme/orders/7')).allowed).toBe(true);
  });
});

describe('nothing leaks', () => {
  it('no token and no claim value in any log line', () => {
    const all = svc.logs.join('\n');
    for (const t of presented) expect(all).not.toContain(t);
    expect(all).not.toContain('x-admin');
    expect(all).not.toContain('group-1-');
  });
});
