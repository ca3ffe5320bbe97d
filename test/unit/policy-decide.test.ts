// The cookbook of docs/policy.md, recipe by recipe, through the pure decide(): conditions (CEL),
// path templates, host wildcards, headers from claims and shadow mode, with in-memory verifiers.
// Each recipe's config below is the one the page shows.
import { beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import { InvalidCredentialError } from '../../src/core/errors.ts';
import { newIdentity } from '../../src/core/identity.ts';
import type { Allow, AuthzRequest, Decision, Deny, Identity } from '../../src/core/types.ts';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';
import { decideDeps, type TestDeps } from '../support/deps.ts';

const CONFIG = `
realm: api.example.com
credentials:
  api_key: { store: { type: memory } }
  jwt:
    - { issuer: https://idp.example.com, audiences: [https://api.example.com], jwks_file: jwks.json }
headers:
  set:
    x-user-id: subject
    x-client-id: client_id
    x-tenant: claims.tenant
    x-roles: claims.roles
    x-email: { from: claims.email, unsafe: percent_encode }
routes:
  # An IP allow-list on a public page.
  - name: status
    public: true
    match: { path: /status }
    when: ["request.source_ip.inCidr(['10.0.0.0/8', '192.168.0.0/16'])"]
  # Tenant isolation by path, and admin-only methods by role.
  - name: tenant-orders
    match: { path_template: "/v1/tenants/{tenant}/orders/{rest...}" }
    auth: [jwt]
    when:
      - { name: own-tenant, expr: "request.params.tenant == identity.claims.tenant" }
      - name: admin-writes
        expr: "request.method in ['GET', 'HEAD'] || (has(identity.claims.roles) && 'admin' in identity.claims.roles)"
  # Tenant isolation by host.
  - name: tenant-app
    match: { host: "*.t.example.com", path_prefix: /app }
    auth: [jwt]
    when: ["request.host == identity.claims.tenant + '.t.example.com'"]
  # Business hours.
  - name: payroll
    match: { path_prefix: /v1/payroll }
    auth: [jwt]
    when:
      - >-
        now.localDayOfWeek('Europe/Berlin') >= 1 && now.localDayOfWeek('Europe/Berlin') <= 5 &&
        now.localHours('Europe/Berlin') >= 9 && now.localHours('Europe/Berlin') < 17
  # Per-tier limits with claims (an API key's metadata).
  - name: export
    match: { path: /v1/export }
    auth: [api-key]
    when:
      - name: tier-limit
        expr: "!('limit' in request.query) || int(request.query.limit) <= (identity.claims.tier == 'gold' ? 1000 : 100)"
  # A new rule rolled out in shadow mode.
  - name: beta
    mode: shadow
    match: { path_prefix: /v1/beta }
    auth: [jwt, api-key]
    scopes: [beta:use]
    when: [{ name: beta-tester, expr: "has(identity.claims.beta) && identity.claims.beta == true" }]
`;

const skipped: string[] = [];
const policy = compilePolicy(parseConfig(CONFIG), { onClaimHeaderSkipped: (h, why) => skipped.push(`${h}:${why}`) });
// Monday 2026-12-07 10:00 in Berlin (CET, UTC+1).
const MONDAY_10 = Date.parse('2026-12-07T09:00:00Z');
let now = MONDAY_10;

/** Tokens stand for identities: the JWT verifier is a table here (the real one: test/contract/policy.test.ts). */
const tokens = new Map<string, Identity>();
function jwt(claims: Record<string, unknown>, scopes: string[] = []): string {
  const t = `eyJ.token-${tokens.size}.sig`;
  tokens.set(t, newIdentity('jwt', { subject: 'alice', clientId: 'web', scopes, issuer: 'https://idp', claims }));
  return t;
}

let goldKey: string;
let silverKey: string;
let deps: TestDeps;

beforeAll(async () => {
  const store = new MemoryKeyStore();
  goldKey = (await createKey(store, 'pcl', { clientId: 'partner-g', metadata: { tier: 'gold' } }, now)).key;
  silverKey = (await createKey(store, 'pcl', { clientId: 'partner-s', metadata: { tier: 'silver' } }, now)).key;
  deps = {
    now: () => now,
    keyStore: store,
    async verifyJwt(token) {
      const id = tokens.get(token);
      if (!id) throw new InvalidCredentialError('jwt_signature_invalid');
      return id;
    },
  };
});

function req(method: string, rawPath: string, h: Record<string, string> = {}, over: Partial<AuthzRequest> = {}) {
  const headers = Object.assign(Object.create(null) as Record<string, string>, h);
  return {
    method,
    host: 'api.example.com',
    rawPath,
    sourceIp: '203.0.113.9',
    contextExtensions: {},
    headers,
    ...over,
  } satisfies AuthzRequest;
}
const run = (r: AuthzRequest) => decide(r, policy, decideDeps(deps));
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const header = (d: Allow, name: string) => d.set.find((h) => h.name === name)?.value;

function expectAllowed(d: Decision): asserts d is Allow {
  expect(d.allowed, JSON.stringify(d)).toBe(true);
}
function expectCondition(d: Decision, reason: 'condition_failed' | 'condition_error', condition: string): void {
  expect(d.allowed).toBe(false);
  const deny = d as Deny;
  expect(deny.status).toBe(403);
  expect(deny.error).toBe('forbidden');
  expect(deny.reason).toBe(reason);
  expect(deny.condition).toBe(condition);
  // The client learns nothing of the condition.
  expect(deny.description).toBe('Access to this resource is forbidden');
  expect(JSON.stringify(deny.responseHeaders)).not.toMatch(/tenant|admin|when/);
}

describe('cookbook: admin-only methods by role', () => {
  it('reads for every member of the tenant; writes only with the admin role', async () => {
    const viewer = jwt({ tenant: 'acme', roles: ['viewer'] });
    const admin = jwt({ tenant: 'acme', roles: ['viewer', 'admin'] });
    expectAllowed(await run(req('GET', '/v1/tenants/acme/orders/7', bearer(viewer))));
    expectCondition(
      await run(req('DELETE', '/v1/tenants/acme/orders/7', bearer(viewer))),
      'condition_failed',
      'admin-writes',
    );
    expectAllowed(await run(req('DELETE', '/v1/tenants/acme/orders/7', bearer(admin))));
    // No roles at all: the has() guard makes it false, not an error.
    expectCondition(
      await run(req('POST', '/v1/tenants/acme/orders/7', bearer(jwt({ tenant: 'acme' })))),
      'condition_failed',
      'admin-writes',
    );
    // A string where a list belongs is an error, never a substring match.
    expectCondition(
      await run(req('DELETE', '/v1/tenants/acme/orders/7', bearer(jwt({ tenant: 'acme', roles: 'superadmin' })))),
      'condition_error',
      'admin-writes (no_such_overload)',
    );
  });
});

describe('cookbook: tenant isolation by path', () => {
  it("the caller's own tenant only; the first failing condition is the one named", async () => {
    const t = jwt({ tenant: 'acme', roles: ['admin'] });
    const ok = await run(req('GET', '/v1/tenants/acme/orders/7/items/2', bearer(t)));
    expectAllowed(ok);
    expect(ok.route).toBe('tenant-orders');
    expect(header(ok, 'x-tenant')).toBe('acme');
    expectCondition(await run(req('GET', '/v1/tenants/globex/orders/7', bearer(t))), 'condition_failed', 'own-tenant');
    // Values keep their case: ACME is not acme.
    expectCondition(await run(req('GET', '/v1/tenants/ACME/orders/7', bearer(t))), 'condition_failed', 'own-tenant');
  });

  it('a condition on a missing claim is condition_error (403), not an allow', async () => {
    const d = await run(req('GET', '/v1/tenants/acme/orders/7', bearer(jwt({ roles: ['admin'] }))));
    expectCondition(d, 'condition_error', 'own-tenant (no_such_key)');
    expect((d as Deny).identity?.subject).toBe('alice');
  });

  it('an encoded / in a template value is refused before any route (400), in the tenant and in the rest', async () => {
    const t = jwt({ tenant: 'acme/x' });
    for (const p of [
      '/v1/tenants/acme%2Fx/orders/7',
      '/v1/tenants/acme/orders/7%2F..%2F8',
      '/v1/tenants/acme%2f..%2fglobex/orders/1',
    ]) {
      const d = await run(req('GET', p, bearer(t)));
      expect(d.allowed).toBe(false);
      expect((d as Deny).status).toBe(400);
      expect((d as Deny).reason).toBe('path_encoded_separator');
    }
  });

  it('percent-encoded values are decoded before the comparison', async () => {
    const t = jwt({ tenant: 'café' });
    expectCondition(await run(req('GET', '/v1/tenants/cafe/orders/7', bearer(t))), 'condition_failed', 'own-tenant');
    // The condition holds; then x-tenant (reject, the default) refuses the non-ASCII value: 401, never sent.
    const d = await run(req('GET', '/v1/tenants/caf%C3%A9/orders/7', bearer(t)));
    expect((d as Deny).reason).toBe('identity_value_unsafe');
  });

  it('the template matches whole segments only: a missing id is no route', async () => {
    const d = await run(req('GET', '/v1/tenants/acme/orders', bearer(jwt({ tenant: 'acme' }))));
    expect((d as Deny).reason).toBe('no_route');
  });
});

describe('cookbook: tenant isolation by host', () => {
  const at = (host: string, t: string) => run(req('GET', '/app/home', bearer(t), { host }));
  it('*.t.example.com: one label, and only the caller tenant', async () => {
    const t = jwt({ tenant: 'acme' });
    expectAllowed(await at('acme.t.example.com', t));
    expectAllowed(await at('ACME.t.example.com:8443', t)); // canonical host: lower case, no port
    expectCondition(await at('globex.t.example.com', t), 'condition_failed', 'routes[2].when[0]');
    expect(((await at('acme.x.t.example.com', t)) as Deny).reason).toBe('no_route');
    expect(((await at('t.example.com', t)) as Deny).reason).toBe('no_route');
  });
});

describe('cookbook: an IP allow-list on a public route', () => {
  it('inside the ranges: allowed with no credential; outside: 403 condition_failed', async () => {
    const inside = await run(req('GET', '/status', {}, { sourceIp: '10.1.2.3' }));
    expectAllowed(inside);
    expect(inside.reason).toBe('public_route');
    expect(inside.identity).toBeUndefined();
    expectCondition(
      await run(req('GET', '/status', {}, { sourceIp: '11.0.0.1' })),
      'condition_failed',
      'routes[0].when[0]',
    );
    expectCondition(
      await run(req('GET', '/status', {}, { sourceIp: '2001:db8::1' })),
      'condition_failed',
      'routes[0].when[0]',
    );
  });
});

describe('cookbook: business hours', () => {
  it('Monday to Friday, 9:00 to 17:00 Berlin time', async () => {
    const t = jwt({});
    const at = async (iso: string) => {
      now = Date.parse(iso);
      try {
        return await run(req('GET', '/v1/payroll/runs', bearer(t)));
      } finally {
        now = MONDAY_10;
      }
    };
    expectAllowed(await at('2026-12-07T08:00:00Z')); // Monday 09:00 CET
    expectCondition(await at('2026-12-07T07:59:59Z'), 'condition_failed', 'routes[3].when[0]');
    expectCondition(await at('2026-12-11T16:00:00Z'), 'condition_failed', 'routes[3].when[0]'); // Friday 17:00
    expectCondition(await at('2026-12-12T10:00:00Z'), 'condition_failed', 'routes[3].when[0]'); // Saturday
    expectAllowed(await at('2026-07-06T07:30:00Z')); // Monday 09:30 CEST
  });
});

describe('cookbook: per-tier limits with claims', () => {
  it("an API key's metadata is its claims: gold may ask for 1000 items, others 100", async () => {
    const ask = (key: string, q: string) => run(req('GET', `/v1/export${q}`, { 'x-api-key': key }));
    expectAllowed(await ask(goldKey, '?limit=1000'));
    expectAllowed(await ask(silverKey, '?limit=100'));
    expectAllowed(await ask(silverKey, ''));
    expectCondition(await ask(silverKey, '?limit=101'), 'condition_failed', 'tier-limit');
    expectCondition(await ask(silverKey, '?limit=lots'), 'condition_error', 'tier-limit (int_conversion_error)');
    expectCondition(await ask(goldKey, '?limit=10&limit=5000'), 'condition_error', 'tier-limit (int_conversion_error)');
  });

  it('the key names no subject: no x-user-id; the claims are the metadata', async () => {
    const d = await run(req('GET', '/v1/export', { 'x-api-key': goldKey, 'x-user-id': 'admin' }));
    expectAllowed(d);
    expect(d.identity?.subject).toBeUndefined();
    expect(d.identity?.claims).toEqual({ tier: 'gold' });
    expect(header(d, 'x-user-id')).toBeUndefined();
    expect(d.remove).toContain('x-user-id');
  });
});

describe('headers from claims', () => {
  it('strings as they are, lists space-joined, percent_encode where configured; absent: unset and counted', async () => {
    skipped.length = 0;
    const t = jwt({ tenant: 'acme', roles: ['viewer', 'admin'], email: 'Zoë <z@example.com>' });
    const d = await run(
      req('GET', '/v1/tenants/acme/orders/1', { ...bearer(t), 'x-tenant': 'globex', 'x-email': 'x' }),
    );
    expectAllowed(d);
    expect(header(d, 'x-tenant')).toBe('acme');
    expect(header(d, 'x-roles')).toBe('viewer admin');
    expect(decodeURIComponent(header(d, 'x-email')!)).toBe('Zoë <z@example.com>');
    // The client's own values never pass: set ones are overwritten, the others removed.
    expect(d.remove).not.toContain('x-tenant');
    const noEmail = await run(
      req('GET', '/v1/tenants/acme/orders/1', { ...bearer(jwt({ tenant: 'acme', roles: {} })), 'x-email': 'forged' }),
    );
    expectAllowed(noEmail);
    expect(header(noEmail, 'x-email')).toBeUndefined();
    expect(header(noEmail, 'x-roles')).toBeUndefined();
    expect(noEmail.remove).toContain('x-email');
    expect(skipped).toEqual(['x-roles:claim_unsupported_type', 'x-email:claim_absent']);
  });

  it('a claim with CR/LF is refused (401 identity_value_unsafe), never sent', async () => {
    const d = await run(req('GET', '/v1/tenants/acme/orders/1', bearer(jwt({ tenant: 'acme\r\nx-admin: 1' }))));
    // The condition fails first (the tenant differs from the path's)...
    expect((d as Deny).reason).toBe('condition_failed');
    // ...and where it holds, the header value is refused.
    const e = await run(
      req('GET', '/v1/tenants/acme/orders/1', bearer(jwt({ tenant: 'acme', roles: ['a\r\nx-admin: 1'] }))),
    );
    expect(e.allowed).toBe(false);
    expect((e as Deny).status).toBe(401);
    expect((e as Deny).reason).toBe('identity_value_unsafe');
  });
});

describe('shadow mode', () => {
  it('a would-be deny is allowed, recorded, and sets no identity header; client identity headers and the credential go', async () => {
    const t = jwt({ tenant: 'acme' }, ['beta:use']);
    const d = await run(req('GET', '/v1/beta/x', { ...bearer(t), 'x-user-id': 'admin', 'x-tenant': 'globex' }));
    expectAllowed(d);
    expect(d.reason).toBe('shadow');
    expect(d.identity).toBeUndefined();
    expect(d.set).toEqual([]);
    expect([...d.remove].sort()).toEqual(['authorization', 'x-tenant', 'x-user-id']);
    expect(d.shadow).toMatchObject({ status: 403, reason: 'condition_failed', condition: 'beta-tester' });
    // Who was decided about stays with the record (logs, check --explain), never in a header.
    expect(d.shadow?.identity?.subject).toBe('alice');
  });

  it('every kind of would-be deny: a bad credential, a missing scope, no credential', async () => {
    const bad = await run(req('GET', '/v1/beta/x', bearer('eyJ.forged.sig')));
    expectAllowed(bad);
    expect(bad.shadow).toEqual({
      status: 401,
      reason: 'jwt_signature_invalid',
      condition: undefined,
      identity: undefined,
    });
    expect(bad.set).toEqual([]);
    const scope = await run(req('GET', '/v1/beta/x', bearer(jwt({ beta: true }))));
    expect((scope as Allow).shadow?.reason).toBe('scope_missing');
    const none = await run(req('GET', '/v1/beta/x'));
    expect((none as Allow).shadow).toMatchObject({ status: 401, reason: 'missing_credentials' });
  });

  it('a would-be allow is the allow itself, identity headers included, marked as shadow', async () => {
    const d = await run(req('GET', '/v1/beta/x', bearer(jwt({ beta: true, tenant: 'acme' }, ['beta:use']))));
    expectAllowed(d);
    expect(d.reason).toBe('allowed');
    expect(header(d, 'x-user-id')).toBe('alice');
    expect(header(d, 'x-tenant')).toBe('acme');
    expect(d.shadow).toEqual({ status: 200, reason: 'allowed' });
  });

  it('an enforced route has no shadow record', async () => {
    const d = await run(req('GET', '/v1/tenants/acme/orders/1', bearer(jwt({ tenant: 'acme' }))));
    expect((d as Allow).shadow).toBeUndefined();
  });
});
