// The decision table (src/core/reasons.ts, src/core/decision.ts, README "How a request is decided"), row by row,
// through the pure decide() with in-memory deps.
import { beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import { DependencyUnavailableError, InvalidCredentialError } from '../../src/core/errors.ts';
import type { AuthzRequest, Decision, Deny, Allow, Identity } from '../../src/core/types.ts';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';
import { MemoryRateLimiter } from '../../src/stores/ratelimit.ts';
import type { KeyStore } from '../../src/stores/keystore.ts';
import { decideDeps, type TestDeps } from '../support/deps.ts';

const CONFIG = `
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], query_param: api_key, store: { type: memory } }
  jwt:
    - { issuer: https://idp.example.com, audiences: [https://api.example.com], jwks_file: jwks.json }
  introspection: { endpoint: https://idp.example.com/introspect, client_id: gw, client_secret: s, audiences: [https://api.example.com] }
rate_limits:
  - { name: partner, key: client_id, limit: 2, window_seconds: 60 }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [jwt, oauth2, api-key], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [jwt, oauth2], scopes: [orders:write] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: partner }
  - { name: admin, match: { path: /admin, host: admin.example.com }, auth: [api-key] }
`;

const policy = compilePolicy(parseConfig(CONFIG));
const now = Date.parse('2026-06-01T00:00:00Z');

function req(over: Partial<AuthzRequest> & { h?: Record<string, string> } = {}): AuthzRequest {
  const headers: Record<string, string> = Object.assign(
    Object.create(null),
    { ':method': over.method ?? 'GET', ':path': over.rawPath ?? '/v1/orders' },
    over.h ?? {},
  );
  return {
    method: 'GET',
    host: 'api.example.com',
    rawPath: '/v1/orders',
    sourceIp: '10.0.0.5',
    contextExtensions: {},
    ...over,
    headers,
  };
}

const jwtIdentity: Identity = {
  method: 'jwt',
  subject: 'alice',
  clientId: 'web',
  scopes: ['orders:read'],
  issuer: 'https://idp.example.com',
};
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';

let store: KeyStore;
let key: string;
let keyRoutes: string;
let keyCidr: string;
let revokedKey: string;
let expiredKey: string;
let deps: TestDeps;

beforeAll(async () => {
  store = new MemoryKeyStore();
  key = (await createKey(store, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'], subject: 'svc-orders' }, now))
    .key;
  keyRoutes = (
    await createKey(store, 'pcl', { clientId: 'partner-b', scopes: ['orders:read'], routes: ['reports'] }, now)
  ).key;
  keyCidr = (
    await createKey(store, 'pcl', { clientId: 'partner-c', scopes: ['orders:read'], cidrs: ['192.168.0.0/16'] }, now)
  ).key;
  const r = await createKey(store, 'pcl', { clientId: 'partner-d' }, now);
  revokedKey = r.key;
  await store.put({ ...r.record, status: 'revoked' });
  expiredKey = (await createKey(store, 'pcl', { clientId: 'partner-e', expiresInSeconds: 60 }, now - 120_000)).key;
  deps = {
    now: () => now,
    keyStore: store,
    async verifyJwt(token) {
      if (token === JWT) return jwtIdentity;
      throw new InvalidCredentialError('jwt_signature_invalid');
    },
    async introspect(token) {
      if (token === 'opaque-down') throw new DependencyUnavailableError('introspection_unreachable', 5);
      if (token === 'opaque-ok') return { method: 'oauth2', subject: 'bob', clientId: 'cli', scopes: ['orders:write'] };
      throw new InvalidCredentialError('token_inactive');
    },
    rateLimiter: new MemoryRateLimiter(),
  };
});

const run = (r: AuthzRequest, d: TestDeps = deps) => decide(r, policy, decideDeps(d));
function expectDeny(d: Decision, status: number, error: string, challenge?: string | null): asserts d is Deny {
  expect(d.allowed).toBe(false);
  const deny = d as Deny;
  expect(deny.status).toBe(status);
  expect(deny.error).toBe(error);
  const www = deny.responseHeaders.find((h) => h.name === 'www-authenticate')?.value;
  if (challenge === null) expect(www).toBeUndefined();
  else if (challenge !== undefined) expect(www).toBe(challenge);
}
const header = (d: Allow, name: string) => d.set.find((h) => h.name === name)?.value;

describe('decision table', () => {
  it('no credential on a protected route: 401 with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
    const d = await run(req());
    expectDeny(d, 401, 'missing_credentials', 'Bearer realm="api.example.com"');
  });

  it.each([
    ['two Authorization headers', { authorization: `Bearer ${JWT},Bearer ${JWT}` }, 'authorization_repeated'],
    ['empty Bearer', { authorization: 'Bearer ' }, 'bearer_empty'],
    ['Bearer with no token at all', { authorization: 'Bearer' }, 'bearer_empty'],
    ['bad Bearer syntax', { authorization: 'Bearer a b' }, 'bearer_syntax'],
    ['two kinds of credential', { authorization: `Bearer ${JWT}`, 'x-api-key': 'pcl_x' }, 'multiple_credentials'],
    ['unsupported scheme', { authorization: 'Basic dXNlcjpwYXNz' }, 'authorization_scheme_unsupported'],
    ['method override header', { 'x-http-method-override': 'DELETE' }, 'method_override_header'],
    ['repeated api key header', { 'x-api-key': 'a,b' }, 'api_key_header_repeated'],
  ])('malformed: %s -> 400 invalid_request', async (_name, h, reason) => {
    const d = await run(req({ h }));
    expectDeny(d, 400, 'invalid_request', 'Bearer realm="api.example.com", error="invalid_request"');
    expect(d.reason).toBe(reason);
  });

  it('API key in header and in query at once is two credentials: 400', async () => {
    const d = await run(req({ rawPath: `/v1/orders?api_key=${key}`, h: { 'x-api-key': key } }));
    expectDeny(d, 400, 'invalid_request');
    expect(d.reason).toBe('multiple_credentials');
  });

  const invalid = 'Bearer realm="api.example.com", error="invalid_token"';
  it.each([
    ['bad JWT', { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }, 'jwt_signature_invalid'],
    ['inactive opaque token', { authorization: 'Bearer some-opaque-token' }, 'token_inactive'],
    ['unknown API key with a valid checksum', { 'x-api-key': 'UNKNOWN' }, 'api_key_unknown'],
    ['API key with a bad checksum', { 'x-api-key': 'pcl_' + 'A'.repeat(38) }, 'api_key_malformed'],
  ])('%s -> 401 invalid_token', async (_n, h, reason) => {
    let headers = h as Record<string, string>;
    if (headers['x-api-key'] === 'UNKNOWN') {
      const { generateApiKey } = await import('../../src/credentials/api-key/format.ts');
      headers = { 'x-api-key': generateApiKey('pcl') };
    }
    const d = await run(req({ h: headers }));
    expectDeny(d, 401, 'invalid_token', invalid);
    expect(d.reason).toBe(reason);
  });

  it('revoked and expired API keys -> 401 invalid_token', async () => {
    const a = await run(req({ h: { 'x-api-key': revokedKey } }));
    expectDeny(a, 401, 'invalid_token', invalid);
    expect(a.reason).toBe('api_key_revoked');
    const b = await run(req({ h: { 'x-api-key': expiredKey } }));
    expectDeny(b, 401, 'invalid_token', invalid);
    expect(b.reason).toBe('api_key_expired');
  });

  it('credential kind not accepted on the route -> 401 invalid_token', async () => {
    const d = await run(req({ method: 'POST', h: { 'x-api-key': key } }));
    expectDeny(d, 401, 'invalid_token', invalid);
    expect(d.reason).toBe('credential_kind_not_accepted');
  });

  it('missing scope -> 403 insufficient_scope naming the required scopes', async () => {
    const d = await run(req({ method: 'POST', h: { authorization: `Bearer ${JWT}` } }));
    expectDeny(
      d,
      403,
      'insufficient_scope',
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    );
  });

  it('context_extensions portcullis.scopes adds required scopes', async () => {
    const d = await run(
      req({ h: { authorization: `Bearer ${JWT}` }, contextExtensions: { 'portcullis.scopes': 'orders:audit' } }),
    );
    expectDeny(
      d,
      403,
      'insufficient_scope',
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:read orders:audit"',
    );
  });

  it('scopes match whole tokens, case-sensitively', async () => {
    const d1 = await run(req({ h: { authorization: `Bearer ${JWT}` } }), {
      ...deps,
      verifyJwt: async () => ({ ...jwtIdentity, scopes: ['orders:read-lite', 'ORDERS:READ', 'orders'] }),
    });
    expectDeny(d1, 403, 'insufficient_scope');
  });

  it('key not allowed on the route, or from the source IP -> 403 forbidden, no challenge', async () => {
    const a = await run(req({ h: { 'x-api-key': keyRoutes } }));
    expectDeny(a, 403, 'forbidden', null);
    expect(a.reason).toBe('api_key_route_not_allowed');
    const b = await run(req({ h: { 'x-api-key': keyCidr }, sourceIp: '10.0.0.5' }));
    expectDeny(b, 403, 'forbidden', null);
    expect(b.reason).toBe('api_key_source_not_allowed');
    const c = await run(req({ h: { 'x-api-key': keyCidr }, sourceIp: '::ffff:192.168.4.4' }));
    expect(c.allowed).toBe(true);
  });

  it('no route matched -> 403 forbidden (default: deny)', async () => {
    const d = await run(req({ rawPath: '/v2/anything', h: { 'x-api-key': key } }));
    expectDeny(d, 403, 'forbidden', null);
    expect(d.reason).toBe('no_route');
  });

  it('rate limit exceeded -> 429 with Retry-After and RateLimit headers; allowed answers carry the quota', async () => {
    const r = () => run(req({ rawPath: '/v1/reports/q1', h: { 'x-api-key': keyRoutes } }));
    const first = (await r()) as Allow;
    expect(first.allowed).toBe(true);
    expect(first.responseHeaders).toContainEqual({
      name: 'ratelimit',
      value: expect.stringMatching(/^"partner";r=1;t=\d+$/),
    });
    expect(first.responseHeaders).toContainEqual({ name: 'ratelimit-policy', value: '"partner";q=2;w=60' });
    expect((await r()).allowed).toBe(true);
    const third = await r();
    expectDeny(third, 429, 'rate_limited', null);
    expect(third.responseHeaders.find((h) => h.name === 'retry-after')?.value).toMatch(/^\d+$/);
    expect(third.responseHeaders.find((h) => h.name === 'ratelimit')?.value).toMatch(/^"partner";r=0;t=\d+$/);
  });

  it('dependency down -> 503 temporarily_unavailable with Retry-After, never allow', async () => {
    const d = await run(req({ h: { authorization: 'Bearer opaque-down' } }));
    expectDeny(d, 503, 'temporarily_unavailable', null);
    expect(d.responseHeaders).toContainEqual({ name: 'retry-after', value: '5' });
  });

  it('an unexpected verifier error denies with 503, never allows', async () => {
    const d = await run(req({ h: { authorization: `Bearer ${JWT}` } }), {
      ...deps,
      verifyJwt: async () => {
        throw new TypeError('boom');
      },
    });
    expectDeny(d, 503, 'temporarily_unavailable');
    expect(d.reason).toBe('internal_error');
  });

  it('a credential kind with no verifier configured is invalid, not allowed', async () => {
    const d = await run(req({ h: { authorization: `Bearer ${JWT}` } }), { now: () => now });
    expectDeny(d, 401, 'invalid_token');
  });
});

describe('allowed answers and header hygiene', () => {
  it('sets identity headers, removes spoofed and credential headers, never both', async () => {
    const d = (await run(
      req({ h: { 'x-api-key': key, 'x-user-id': 'admin', x_scopes: 'all', 'x-auth-extra': '1', 'x-other': 'keep' } }),
    )) as Allow;
    expect(d.allowed).toBe(true);
    expect(header(d, 'x-client-id')).toBe('partner-a');
    expect(header(d, 'x-scopes')).toBe('orders:read');
    expect(header(d, 'x-auth-method')).toBe('api-key');
    expect(header(d, 'x-user-id')).toBe('svc-orders');
    expect([...d.remove].sort()).toEqual(['x-api-key', 'x-auth-extra', 'x_scopes']);
    for (const s of d.set) expect(d.remove).not.toContain(s.name);
  });

  it('public routes allow and still strip client identity headers and credentials', async () => {
    const d = (await run(
      req({
        rawPath: '/public/docs',
        h: { 'x-user-id': 'admin', authorization: 'Bearer whatever', 'x-scopes': 'all' },
      }),
    )) as Allow;
    expect(d.allowed).toBe(true);
    expect(d.set).toEqual([]);
    expect([...d.remove].sort()).toEqual(['authorization', 'x-scopes', 'x-user-id']);
  });

  it('JWT and opaque identities map to the trusted headers', async () => {
    const a = (await run(req({ h: { authorization: `Bearer ${JWT}` } }))) as Allow;
    expect(header(a, 'x-user-id')).toBe('alice');
    expect(header(a, 'x-client-id')).toBe('web');
    expect(header(a, 'x-auth-method')).toBe('jwt');
    expect(a.remove).toEqual(['authorization']);
    const b = (await run(req({ method: 'POST', h: { authorization: 'Bearer opaque-ok' } }))) as Allow;
    expect(header(b, 'x-auth-method')).toBe('oauth2');
  });

  it('an identity value with CR/LF is refused, not forwarded', async () => {
    const d = await run(req({ h: { authorization: `Bearer ${JWT}` } }), {
      ...deps,
      verifyJwt: async () => ({ ...jwtIdentity, subject: 'alice\r\nx-admin: 1' }),
    });
    expectDeny(d, 401, 'invalid_token');
  });

  it('an API key in the query string is removed from the upstream URL', async () => {
    const d = (await run(req({ rawPath: `/v1/orders?api_key=${key}&page=2` }))) as Allow;
    expect(d.allowed).toBe(true);
    expect(d.removeQuery).toEqual(['api_key']);
  });

  it('Authorization: ApiKey <key> and a Bearer API-key-shaped token reach the key store', async () => {
    expect((await run(req({ h: { authorization: `ApiKey ${key}` } }))).allowed).toBe(true);
    const d = await run(req({ h: { authorization: `Bearer ${key}` } }));
    expect(d.allowed).toBe(true);
    expect(d.identity?.method).toBe('api-key');
  });

  it('context_extensions portcullis.route selects the rule by name', async () => {
    const d = await run(
      req({ rawPath: '/anything', h: { 'x-api-key': key }, contextExtensions: { 'portcullis.route': 'orders-read' } }),
    );
    expect(d.allowed).toBe(true);
    expect(d.route).toBe('orders-read');
    const unknown = await run(req({ contextExtensions: { 'portcullis.route': 'nope' } }));
    expectDeny(unknown, 403, 'forbidden');
  });

  it('HEAD is treated as GET, hosts match without port or case', async () => {
    expect((await run(req({ method: 'HEAD', h: { 'x-api-key': key } }))).allowed).toBe(true);
    const d = await run(req({ rawPath: '/admin', host: 'ADMIN.example.com:8443', h: { 'x-api-key': key } }));
    expect(d.route).toBe('admin');
    const other = await run(req({ rawPath: '/admin', host: 'api.example.com', h: { 'x-api-key': key } }));
    expect(other.reason).toBe('no_route');
  });
});

describe('paths', () => {
  it.each([
    ['/v1/orders/%2e%2e/admin', 'path_dot_segment'],
    ['/v1/orders/../admin', 'path_dot_segment'],
    ['/v1/orders/./7', 'path_dot_segment'],
    ['/v1/orders%2F7', 'path_encoded_separator'],
    ['/v1/orders%5c7', 'path_encoded_separator'],
    ['/v1/orders%007', 'path_encoded_separator'],
    ['/v1/orders%zz', 'path_bad_escape'],
    ['/v1/orders%252e', 'path_double_encoding'],
    ['/v1//orders', 'path_empty_segment'],
    ['/v1/orders\\7', 'path_bad_character'],
    ['/v1/orders;x=../admin', 'path_bad_character'],
    ['/v1/or ders', 'path_bad_character'],
    ['v1/orders', 'path_not_absolute'],
    ['', 'path_empty'],
    ['/v1/orders#frag', 'path_bad_character'],
  ])('%s -> 400 (%s)', async (rawPath, reason) => {
    const d = await run(req({ rawPath, h: { 'x-api-key': key } }));
    expectDeny(d, 400, 'invalid_request');
    expect(d.reason).toBe(reason);
  });

  it('prefixes match whole segments; unreserved escapes are decoded; the query is ignored', async () => {
    expect((await run(req({ rawPath: '/v1/ordersX', h: { 'x-api-key': key } }))).reason).toBe('no_route');
    expect((await run(req({ rawPath: '/v1/%6Frders/7?x=/public', h: { 'x-api-key': key } }))).route).toBe(
      'orders-read',
    );
    expect((await run(req({ rawPath: '/v1/orders/', h: { 'x-api-key': key } }))).route).toBe('orders-read');
    expect((await run(req({ rawPath: '/publicity' }))).reason).toBe('no_route');
  });
});
