// Request confusion (docs/security.md, "Request confusion"): for each class, several members of the
// class crafted against decide() with a route bound tightly and a public catch-all behind it. Each
// must be refused with its exact 400, or land on the protected route: never fall through to public.
import { beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import { decideDeps, type TestDeps } from '../support/deps.ts';
import type { Allow, AuthzRequest, Decision, Deny } from '../../src/core/types.ts';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { compilePolicy, type Policy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';
import { MemoryRateLimiter } from '../../src/stores/ratelimit.ts';

const ROUTES = `
routes:
  - { name: admin-host, match: { host: admin.example.com }, auth: [api-key] }
  - { name: admin, match: { path_prefix: /admin }, auth: [api-key] }
  - { name: secret, match: { path: /v1/secret }, auth: [api-key] }
  - { name: items-post, match: { methods: [POST], path_prefix: /v1/items }, auth: [api-key], scopes: [items:write] }
  - { name: items-delete, match: { methods: [DELETE, PUT, PATCH], path_prefix: /v1/items }, auth: [api-key], scopes: [items:delete] }
  - { name: exact-case, match: { path_prefix: /Reports/Q1, case_sensitive: true }, auth: [api-key] }
  - { name: fenced, match: { path_prefix: /v1/fenced }, auth: [api-key] }
  - { name: login, match: { path: /login }, public: true, rate_limit: login }
  - { name: public, match: { path_prefix: / }, public: true }
`;
const RATE_LIMITS = `
rate_limits:
  - { name: login, key: source_ip, limit: 2, window_seconds: 60 }
`;
const config = (extra = '', apiKey = '{ headers: [x-api-key], store: { type: memory } }') =>
  parseConfig(`realm: api.example.com\n${extra}\ncredentials:\n  api_key: ${apiKey}\n${RATE_LIMITS}${ROUTES}`);

const policy = compilePolicy(config());
const now = Date.parse('2026-06-01T00:00:00Z');
const BAD_REQUEST = 'Bearer realm="api.example.com", error="invalid_request"';
const NO_CREDENTIALS = 'Bearer realm="api.example.com"';

let key: string;
let fencedKey: string;
let deps: TestDeps;

beforeAll(async () => {
  const store = new MemoryKeyStore();
  key = (await createKey(store, 'pcl', { clientId: 'writer', scopes: ['items:write'] }, now)).key;
  fencedKey = (
    await createKey(store, 'pcl', { clientId: 'fenced', cidrs: ['203.0.113.0/24', '2001:db8:aaaa::/48'] }, now)
  ).key;
  deps = { now: () => now, keyStore: store, rateLimiter: new MemoryRateLimiter() };
});

function req(over: Partial<AuthzRequest> & { h?: Record<string, string> } = {}): AuthzRequest {
  const headers: Record<string, string> = Object.assign(Object.create(null), over.h ?? {});
  return {
    method: 'GET',
    host: 'api.example.com',
    rawPath: '/',
    sourceIp: '10.0.0.5',
    contextExtensions: {},
    ...over,
    headers,
  };
}
const run = (r: AuthzRequest, p: Policy = policy, d: TestDeps = deps) => decide(r, p, decideDeps(d));

function expect400(d: Decision, reason: string): void {
  expect(d.allowed).toBe(false);
  const deny = d as Deny;
  expect({ status: deny.status, error: deny.error, reason: deny.reason }).toEqual({
    status: 400,
    error: 'invalid_request',
    reason,
  });
  expect(deny.responseHeaders.find((h) => h.name === 'www-authenticate')?.value).toBe(BAD_REQUEST);
}

function expectProtected(d: Decision, route: string): void {
  // No credential was sent: the protected route answers 401, never the public route's allow.
  expect({ allowed: d.allowed, status: d.status, route: d.route, reason: d.reason }).toEqual({
    allowed: false,
    status: 401,
    route,
    reason: 'missing_credentials',
  });
  expect((d as Deny).responseHeaders.find((h) => h.name === 'www-authenticate')?.value).toBe(NO_CREDENTIALS);
}

describe('method override in the query string (and in any header spelling)', () => {
  it("the issue's example: POST /v1/items/7?_method=DELETE with a POST-only key is 400, not allowed", async () => {
    // Without the parameter the key may POST there: the override is the only thing refused.
    expect((await run(req({ method: 'POST', rawPath: '/v1/items/7', h: { 'x-api-key': key } }))).allowed).toBe(true);
    expect400(
      await run(req({ method: 'POST', rawPath: '/v1/items/7?_method=DELETE', h: { 'x-api-key': key } })),
      'method_override_query',
    );
  });

  it.each([
    '_method=delete',
    '_METHOD=DELETE',
    '__method=DELETE',
    '%5Fmethod=DELETE',
    '_%6Dethod=DELETE',
    '.method=DELETE',
    '_method[]=DELETE',
    '_method',
    'page=2&_method=PUT',
    'page=2;_method=PATCH',
    'x-http-method-override=DELETE',
    'X_HTTP_METHOD_OVERRIDE=DELETE',
    'x-http-method=DELETE',
    'x-method-override=DELETE',
    'methodOverride=DELETE',
    'httpMethod=DELETE',
    '_method=DELETE&_method=GET',
  ])('?%s -> 400 method_override_query, on protected and public routes alike', async (query) => {
    expect400(
      await run(req({ method: 'POST', rawPath: `/v1/items/7?${query}`, h: { 'x-api-key': key } })),
      'method_override_query',
    );
    expect400(await run(req({ method: 'POST', rawPath: `/public/form?${query}` })), 'method_override_query');
  });

  it.each([
    ['X-HTTP-Method-Override', 'DELETE'],
    ['x_http_method_override', 'DELETE'],
    ['x-http_method-override', 'DELETE'],
    ['X-HTTP-Method', 'DELETE'],
    ['X_Method_Override', 'PUT'],
  ])('header %s -> 400 method_override_header', async (name, value) => {
    expect400(
      await run(req({ method: 'POST', rawPath: '/v1/items/7', h: { 'x-api-key': key, [name.toLowerCase()]: value } })),
      'method_override_header',
    );
  });

  it('ordinary parameters that merely mention a method are left alone', async () => {
    for (const q of ['method=card', 'payment_method=card', 'Method=x', 'methods=a,b', 'sort=method']) {
      expect(
        (await run(req({ method: 'POST', rawPath: `/v1/items/7?${q}`, h: { 'x-api-key': key } }))).allowed,
        q,
      ).toBe(true);
    }
  });
});

describe('client address from source_ip_header', () => {
  const xff = compilePolicy(config('source_ip_header: x-forwarded-for'));
  const hops1 = compilePolicy(config('source_ip_header: { name: x-forwarded-for, trusted_hops: 1 }'));
  const external = compilePolicy(config('source_ip_header: x-envoy-external-address'));
  const fenced = (xffValue: string | undefined, p: Policy, sourceIp = '10.0.0.5') =>
    run(
      req({
        rawPath: '/v1/fenced',
        sourceIp,
        h: { 'x-api-key': fencedKey, ...(xffValue === undefined ? {} : { 'x-forwarded-for': xffValue }) },
      }),
      p,
    );

  it('the entry the client wrote (leftmost) never passes a CIDR fence; the one the proxy appended (rightmost) decides', async () => {
    const spoofed = await fenced('203.0.113.5, 198.51.100.7', xff);
    expect({ status: spoofed.status, reason: spoofed.reason }).toEqual({
      status: 403,
      reason: 'api_key_source_not_allowed',
    });
    expect((await fenced('198.51.100.7, 203.0.113.5', xff)).allowed).toBe(true);
    expect((await fenced('203.0.113.5', xff)).allowed).toBe(true);
    // A second header line is joined with "," by Envoy: the appended entry is still the rightmost.
    expect((await fenced('203.0.113.5,198.51.100.7', xff)).reason).toBe('api_key_source_not_allowed');
  });

  it('trusted_hops: N skips the N entries the trusted proxies appended, as xff_num_trusted_hops', async () => {
    expect((await fenced('198.51.100.1, 203.0.113.5, 10.0.0.1', hops1)).allowed).toBe(true);
    expect((await fenced('203.0.113.5, 198.51.100.7, 10.0.0.1', hops1)).reason).toBe('api_key_source_not_allowed');
    // Fewer entries than hops + 1: the request did not come through the proxies; the TCP peer counts.
    expect((await fenced('203.0.113.5', hops1, '198.51.100.9')).reason).toBe('api_key_source_not_allowed');
    expect((await fenced('198.51.100.9', hops1, '203.0.113.77')).allowed).toBe(true);
  });

  it('IPv6 entries are read in any spelling; an IPv4-mapped address is its IPv4 address', async () => {
    expect((await fenced('198.51.100.7, 2001:DB8:AAAA:0::1', xff)).allowed).toBe(true);
    expect((await fenced('::ffff:203.0.113.9', xff)).allowed).toBe(true);
    expect((await fenced('2001:db8:bbbb::1', xff)).reason).toBe('api_key_source_not_allowed');
  });

  it.each([
    'garbage',
    '203.0.113.5:443',
    '[2001:db8:aaaa::1]',
    '2001:db8:aaaa::1%25eth0',
    'fe80::1%eth0',
    '203.0.113.005',
    '203.0.113',
    '198.51.100.7, ',
    '198.51.100.7,',
    'unknown',
    '203.0.113.5 203.0.113.6',
    '0x7f.0.0.1',
  ])('the chosen entry must be one valid IP address: %j -> 400 source_ip_invalid', async (value) => {
    expect400(await fenced(value, xff), 'source_ip_invalid');
  });

  it('without the header, the TCP peer; x-envoy-external-address works the same way', async () => {
    expect((await fenced(undefined, xff, '203.0.113.1')).allowed).toBe(true);
    expect((await fenced(undefined, xff, '10.0.0.1')).reason).toBe('api_key_source_not_allowed');
    const ext = (v: string) =>
      run(
        req({
          rawPath: '/v1/fenced',
          h: { 'x-api-key': fencedKey, 'x-envoy-external-address': v, 'x-forwarded-for': '203.0.113.5' },
        }),
        external,
      );
    expect((await ext('203.0.113.8')).allowed).toBe(true);
    expect((await ext('198.51.100.7')).reason).toBe('api_key_source_not_allowed');
    expect400(await ext('203.0.113.8:1'), 'source_ip_invalid');
  });

  it('rotating the client-written entries does not mint new rate-limit budgets (public route, keyed by source IP)', async () => {
    const d = { ...deps, rateLimiter: new MemoryRateLimiter() };
    const login = (spoof: string) =>
      run(req({ method: 'POST', rawPath: '/login', h: { 'x-forwarded-for': `${spoof}, 198.51.100.20` } }), xff, d);
    expect((await login('1.1.1.1')).allowed).toBe(true);
    expect((await login('1.1.1.2')).allowed).toBe(true);
    const third = await login('1.1.1.3');
    expect({ status: third.status, error: (third as Deny).error, route: third.route }).toEqual({
      status: 429,
      error: 'rate_limited',
      route: 'login',
    });
  });
});

describe('host confusion: admin.example.com is bound to a route, everything else is public', () => {
  it.each([
    'admin.example.com',
    'ADMIN.example.com',
    'Admin.Example.Com',
    'admin.example.com.',
    'admin.example.com:443',
    'admin.example.com:8443',
    'ADMIN.EXAMPLE.COM.:80',
  ])('%j is admin.example.com', async (host) => {
    expectProtected(await run(req({ host, rawPath: '/anything' })), 'admin-host');
  });

  it.each([
    '',
    'admin.example.com..',
    '.admin.example.com',
    'admin..example.com',
    'user@admin.example.com',
    'user:pass@admin.example.com',
    '[admin.example.com]',
    '[admin.example.com',
    'admin.example.com,www.example.com',
    'admin.example.com ',
    ' admin.example.com',
    'admin.example.com\t',
    'admin .example.com',
    'admin.example.com:',
    'admin.example.com:0',
    'admin.example.com:65536',
    'admin.example.com:80:80',
    'admin.example.com:http',
    'admin%2eexample.com',
    'admin.example.com/',
    'admin.example.com\\',
    'admin.example.com?',
    'admin.example.com#',
    'admin.example.com;',
    '*.example.com',
    '\u0430dmin.example.com',
    'admin.example.com\u3002',
    '127.1',
    '0x7f.0.0.1',
    '2130706433',
    '[fe80::1%25eth0]',
    `${'a'.repeat(64)}.example.com`,
  ])('%j -> 400 host_invalid', async (host) => {
    expect400(await run(req({ host, rawPath: '/anything' })), 'host_invalid');
  });

  it('valid other hosts stay public, IP literals included', async () => {
    for (const host of [
      'www.example.com',
      'admin.example.com.evil',
      'example.com',
      '203.0.113.7',
      '[2001:db8::1]:8080',
      'localhost:3000',
    ]) {
      const d = await run(req({ host, rawPath: '/anything' }));
      expect({ host, allowed: d.allowed, route: d.route }).toEqual({ host, allowed: true, route: 'public' });
    }
  });
});

describe('path confusion: /admin (prefix) and /v1/secret (exact) before a public /', () => {
  it.each([
    ['/ADMIN', 'admin'],
    ['/Admin/users', 'admin'],
    ['/aDmIn', 'admin'],
    ['/%61dmin', 'admin'],
    ['/ad%4Din', 'admin'],
    ['/admin/', 'admin'],
    ['/admin.json', 'admin'],
    ['/admin.json/x', 'admin'],
    ['/v1/secret/', 'secret'],
    ['/V1/SECRET', 'secret'],
    ['/v1/Secret/', 'secret'],
    ['/v1/secret.json', 'secret'],
    ['/v1/%73ecret', 'secret'],
    ['/v1/secret?x=1', 'secret'],
  ])('%s lands on the protected route %s', async (rawPath, route) => {
    expectProtected(await run(req({ rawPath })), route);
  });

  it.each([
    ['/admin%20', 'path_encoded_whitespace'],
    ['/admin%20/users', 'path_encoded_whitespace'],
    ['/admin%C2%A0', 'path_encoded_whitespace'],
    ['/admin%E2%80%A8', 'path_encoded_whitespace'],
    ['/admin%E3%80%80', 'path_encoded_whitespace'],
    ['/admin%09', 'path_encoded_control'],
    ['/admin%0A', 'path_encoded_control'],
    ['/admin%0d%0a', 'path_encoded_control'],
    ['/admin%7F', 'path_encoded_control'],
    ['/admin%C2%85', 'path_encoded_control'],
    ['/admin%3Fx', 'path_encoded_delimiter'],
    ['/admin%3f', 'path_encoded_delimiter'],
    ['/admin%23', 'path_encoded_delimiter'],
    ['/admin%3Bx=1', 'path_encoded_delimiter'],
    ['/ad%E2%80%8Bmin', 'path_encoded_invisible'],
    ['/admin%EF%BB%BF', 'path_encoded_invisible'],
    ['/ad%C2%ADmin', 'path_encoded_invisible'],
    ['/admin.', 'path_trailing_dot'],
    ['/admin%2e', 'path_trailing_dot'],
    ['/admin../x', 'path_trailing_dot'],
    ['/v1/secret.', 'path_trailing_dot'],
    ['/public/%C0%AE%C0%AE/admin', 'path_invalid_utf8'],
    ['/public/%E0%80%AE%E0%80%AE/admin', 'path_invalid_utf8'],
    ['/public/%F0%80%80%AE%F0%80%80%AE/admin', 'path_invalid_utf8'],
    ['/public/..%C0%AFadmin', 'path_invalid_utf8'],
    ['/public/%C1%9C', 'path_invalid_utf8'],
    ['/public/%ED%A0%80', 'path_invalid_utf8'],
    ['/public/%F4%90%80%80', 'path_invalid_utf8'],
    ['/public/%FE%FF', 'path_invalid_utf8'],
    ['/public/%C3', 'path_invalid_utf8'],
    ['/public/%C3x', 'path_invalid_utf8'],
    ['/public/%A9', 'path_invalid_utf8'],
    ['/%EF%BD%81dmin', 'path_confusable'],
    ['/adm%C4%B1n', 'path_confusable'],
    ['/%E2%84%AAey', 'path_confusable'],
    ['/v1/%C5%BFecret', 'path_confusable'],
    ['/admin%EF%BC%8Fx', 'path_confusable'],
    ['/public%EF%BC%8E%EF%BC%8E/admin', 'path_confusable'],
  ])('%s -> 400 %s', async (rawPath, reason) => {
    expect400(await run(req({ rawPath })), reason);
  });

  it('ordinary paths stay as they were: public, with non-ASCII text allowed', async () => {
    for (const rawPath of [
      '/administrator',
      '/adminx',
      '/v1/secretive',
      '/v1/secret/x',
      '/docs/caf%C3%A9',
      '/docs/%E6%97%A5%E6%9C%AC',
      '/a/%22q%22',
    ]) {
      const d = await run(req({ rawPath }));
      expect({ rawPath, allowed: d.allowed, route: d.route }).toEqual({ rawPath, allowed: true, route: 'public' });
    }
  });

  it('a format suffix widens protected routes only: a public route never grows onto /docs.internal/ or /status.json', async () => {
    const routes = `
routes:
  - { name: docs, match: { path_prefix: /docs }, public: true }
  - { name: status, match: { path: /status }, public: true }
  - { name: private, match: { path_prefix: / }, auth: [api-key] }
`;
    const p = compilePolicy(
      parseConfig(
        `realm: api.example.com\ncredentials:\n  api_key: { headers: [x-api-key], store: { type: memory } }\n${routes}`,
      ),
    );
    for (const rawPath of ['/docs.internal/secrets', '/docs.json', '/status.json', '/status.json/'])
      expectProtected(await run(req({ rawPath }), p), 'private');
    for (const rawPath of ['/docs', '/docs/x', '/Docs/x', '/status', '/status/']) {
      const d = await run(req({ rawPath }), p);
      expect({ rawPath, allowed: d.allowed, route: d.route }).toEqual({
        rawPath,
        allowed: true,
        route: rawPath.startsWith('/s') ? 'status' : 'docs',
      });
    }
  });

  it('case_sensitive: true is the opt-in to exact case: only /Reports/Q1 is the route', async () => {
    expectProtected(await run(req({ rawPath: '/Reports/Q1/x' })), 'exact-case');
    expect((await run(req({ rawPath: '/reports/q1' }))).route).toBe('public');
  });
});

describe('credentials in the query string', () => {
  const withQueryKey = compilePolicy(
    config('', '{ headers: [x-api-key], query_param: api_key, store: { type: memory } }'),
  );
  const forwarding = compilePolicy(
    parseConfig(
      `realm: api.example.com\nheaders: { forward_credentials: true }\ncredentials:\n  api_key: { headers: [x-api-key], query_param: api_key, store: { type: memory } }\n${RATE_LIMITS}${ROUTES}`,
    ),
  );
  const post = (rawPath: string, h: Record<string, string> = {}, p: Policy = policy) =>
    run(req({ method: 'POST', rawPath, h }), p);

  it.each([
    ['x-api-key header + ?access_token=', '/v1/items/7?access_token=abc', () => ({ 'x-api-key': key })],
    [
      'Authorization ApiKey + ?access_token=',
      '/v1/items/7?access_token=abc',
      () => ({ authorization: `ApiKey ${key}` }),
    ],
    [
      'Bearer + ?access_token= (the same token twice)',
      '/v1/items/7?access_token=<KEY>',
      () => ({ authorization: `Bearer ${key}` }),
    ],
    ['header + ?ACCESS_TOKEN=', '/v1/items/7?ACCESS_TOKEN=abc', () => ({ 'x-api-key': key })],
    ['header + percent-encoded name', '/v1/items/7?access%5Ftoken=abc', () => ({ 'x-api-key': key })],
    ['header + empty ?access_token=', '/v1/items/7?page=1&access_token=', () => ({ 'x-api-key': key })],
    ['two ?access_token=', '/v1/items/7?access_token=a&access_token=b', () => ({})],
  ])('%s -> 400 multiple_credentials', async (_n, rawPath, headers) => {
    expect400(await post(rawPath.replace('<KEY>', key), headers()), 'multiple_credentials');
  });

  it('with an API-key query parameter configured: header + ?api_key=, and ?api_key= + ?access_token=, are two credentials', async () => {
    expect400(await post(`/v1/items/7?api_key=${key}`, { 'x-api-key': key }, withQueryKey), 'multiple_credentials');
    expect400(await post(`/v1/items/7?api_key=${key}&access_token=x`, {}, withQueryKey), 'multiple_credentials');
    expect400(
      await post(`/v1/items/7?API_KEY=${key}`, { authorization: `Bearer ${key}` }, withQueryKey),
      'multiple_credentials',
    );
  });

  it('a lone ?access_token= is not accepted: 400 access_token_in_query (RFC 6750 §2.3 is optional; URLs are logged)', async () => {
    expect400(await post(`/v1/items/7?access_token=${key}`), 'access_token_in_query');
    expect400(await post('/v1/items/7?access_token=eyJhbGciOiJSUzI1NiJ9.e30.c2ln'), 'access_token_in_query');
  });

  it('a credential parameter after ";" cannot be removed by Envoy: 400, public routes included', async () => {
    expect400(await post(`/v1/items/7?page=1;api_key=${key}`, {}, withQueryKey), 'query_credential_unremovable');
    expect400(await run(req({ rawPath: '/public/x?a=1;access_token=abc' })), 'query_credential_unremovable');
  });

  it('an accepted query key never reaches the upstream, even with forward_credentials: true', async () => {
    for (const p of [withQueryKey, forwarding]) {
      const d = (await post(`/v1/items/7?page=2&api_key=${key}`, {}, p)) as Allow;
      expect(d.allowed).toBe(true);
      expect(d.removeQuery).toEqual(['api_key']);
    }
    const spelled = (await post(`/v1/items/7?Api_Key=${key}`, {}, withQueryKey)) as Allow;
    expect(spelled.removeQuery).toEqual(['Api_Key']);
  });

  it('on public routes, credential parameters are removed as spelled, and the request allowed', async () => {
    const d = (await run(req({ rawPath: '/public/page?access_token=abc&page=2&Access%5FToken=def' }))) as Allow;
    expect(d.allowed).toBe(true);
    expect([...d.removeQuery].sort()).toEqual(['Access%5FToken', 'access_token']);
    const plain = (await run(req({ rawPath: '/public/page?page=2' }))) as Allow;
    expect(plain.removeQuery).toEqual([]);
  });
});

describe('rate_limit on a public route', () => {
  it('counts by source IP (IPv6 by /64), with the quota headers, then 429', async () => {
    const d = { ...deps, rateLimiter: new MemoryRateLimiter() };
    const login = (sourceIp: string) => run(req({ method: 'POST', rawPath: '/login', sourceIp }), policy, d);
    const first = (await login('2001:db8:1:2::1')) as Allow;
    expect(first.allowed).toBe(true);
    expect(first.responseHeaders).toContainEqual({ name: 'ratelimit-policy', value: '"login";q=2;w=60' });
    expect((await login('2001:db8:1:2:ffff::9')).allowed).toBe(true);
    const third = await login('2001:db8:1:2:dead:beef:0:1');
    expect({ status: third.status, error: (third as Deny).error, reason: third.reason }).toEqual({
      status: 429,
      error: 'rate_limited',
      reason: 'rate_limited',
    });
    expect(third.responseHeaders.find((h) => h.name === 'retry-after')?.value).toMatch(/^\d+$/);
    // Another /64, and an IPv4 client, have their own budgets.
    expect((await login('2001:db8:1:3::1')).allowed).toBe(true);
    expect((await login('198.51.100.1')).allowed).toBe(true);
  });
});
