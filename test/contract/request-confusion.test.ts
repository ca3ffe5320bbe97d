// Request confusion over the wire (docs/security.md, "Request confusion"): a real grpc-js client with
// Envoy's protos against the running server, asserting what the client gets (status, challenge,
// body), what the upstream would get once Envoy applied the answer, and what the server logged.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import type { EnvoyRequestInit } from '../support/envoy.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';

const CONFIG = `
realm: api.example.com
source_ip_header: { name: x-forwarded-for, trusted_hops: 1 }
credentials:
  api_key: { headers: [x-api-key], query_param: api_key, store: { type: file, path: keys.yaml } }
rate_limits:
  - { name: login-contract, key: source_ip, limit: 2, window_seconds: 3600 }
routes:
  - { name: admin-host, match: { host: admin.example.com }, auth: [api-key] }
  - { name: admin, match: { path_prefix: /admin }, auth: [api-key] }
  - { name: secret, match: { path: /v1/secret }, auth: [api-key] }
  - { name: items-post, match: { methods: [POST], path_prefix: /v1/items }, auth: [api-key], scopes: [items:write] }
  - { name: items-delete, match: { methods: [DELETE], path_prefix: /v1/items }, auth: [api-key], scopes: [items:delete] }
  - { name: fenced, match: { path_prefix: /v1/fenced }, auth: [api-key] }
  - { name: login, match: { path: /login }, public: true, rate_limit: login-contract }
  - { name: public, match: { path_prefix: / }, public: true }
`;
const BAD_REQUEST = 'Bearer realm="api.example.com", error="invalid_request"';
// Envoy's edge appends the client it saw; the proxy in front of it (trusted_hops: 1) appended itself.
const via = (client: string, written = '') => `${written ? `${written}, ` : ''}${client}, 10.9.9.9`;

let svc: TestService;
let writer: string;
let fenced: string;

beforeAll(async () => {
  const dir = tempDir();
  const store = FileKeyStore.init(join(dir, 'keys.yaml'));
  writer = (await createKey(store, 'pcl', { clientId: 'writer', scopes: ['items:write'] })).key;
  fenced = (await createKey(store, 'pcl', { clientId: 'fenced', cidrs: ['203.0.113.0/24'] })).key;
  svc = await startService(CONFIG, { dir });
});
afterAll(async () => svc?.stop());

async function expect400(init: EnvoyRequestInit, reason: string) {
  const out = await svc.envoy(init);
  expect(out.allowed).toBe(false);
  expect(out.response.status?.code).toBe(3); // INVALID_ARGUMENT
  expect(out.status).toBe(400);
  expect(out.clientHeaders['www-authenticate']).toBe(BAD_REQUEST);
  expect(JSON.parse(out.body!).error).toBe('invalid_request');
  expect(out.response.dynamic_metadata?.fields?.reason?.stringValue).toBe(reason);
  return out;
}

async function expectProtected(init: EnvoyRequestInit, route: string) {
  const out = await svc.envoy(init);
  expect({
    allowed: out.allowed,
    status: out.status,
    route: out.response.dynamic_metadata?.fields?.route?.stringValue,
  }).toEqual({ allowed: false, status: 401, route });
  expect(out.clientHeaders['www-authenticate']).toBe('Bearer realm="api.example.com"');
}

describe('method override', () => {
  it('POST /v1/items/7?_method=DELETE with a POST-only key: 400, in the query and in header spellings', async () => {
    expect((await svc.envoy({ method: 'POST', path: '/v1/items/7', headers: { 'x-api-key': writer } })).allowed).toBe(
      true,
    );
    for (const q of [
      '_method=DELETE',
      '_METHOD=delete',
      '%5Fmethod=DELETE',
      'a=1;_method=DELETE',
      'X-HTTP-Method-Override=DELETE',
      '_method[]=DELETE',
    ]) {
      await expect400(
        { method: 'POST', path: `/v1/items/7?${q}`, headers: { 'x-api-key': writer } },
        'method_override_query',
      );
    }
    for (const raw of [false, true]) {
      await expect400(
        {
          method: 'POST',
          path: '/v1/items/7',
          headers: [
            ['x-api-key', writer],
            ['X_HTTP_Method_Override', 'DELETE'],
          ],
          rawHeaders: raw,
        },
        'method_override_header',
      );
    }
  });
});

describe('client address', () => {
  it('a CIDR-fenced key: the client-written X-Forwarded-For entry does not pass the fence; the proxy-appended one decides', async () => {
    const spoofed = await svc.envoy({
      path: '/v1/fenced',
      headers: { 'x-api-key': fenced, 'x-forwarded-for': via('198.51.100.7', '203.0.113.5') },
    });
    expect({
      status: spoofed.status,
      error: JSON.parse(spoofed.body!).error,
      www: spoofed.clientHeaders['www-authenticate'],
    }).toEqual({ status: 403, error: 'forbidden', www: undefined });
    expect(spoofed.response.dynamic_metadata?.fields?.reason?.stringValue).toBe('api_key_source_not_allowed');
    expect(
      (
        await svc.envoy({
          path: '/v1/fenced',
          headers: { 'x-api-key': fenced, 'x-forwarded-for': via('203.0.113.5', '198.51.100.7') },
        })
      ).allowed,
    ).toBe(true);
  });

  it('a chosen entry that is not one IP address is 400', async () => {
    for (const bad of ['garbage', '203.0.113.5:1234', '[2001:db8::1]', 'fe80::1%eth0']) {
      await expect400(
        { path: '/v1/fenced', headers: { 'x-api-key': fenced, 'x-forwarded-for': via(bad) } },
        'source_ip_invalid',
      );
    }
  });

  it('rotating the client-written entries, or the host part of an IPv6 /64, does not mint rate-limit budgets', async () => {
    const login = (xff: string) => svc.envoy({ method: 'POST', path: '/login', headers: { 'x-forwarded-for': xff } });
    const first = await login(via('2001:db8:5:6::1', '1.1.1.1'));
    expect(first.allowed).toBe(true);
    expect(first.clientHeaders['ratelimit-policy']).toBe('"login-contract";q=2;w=3600');
    expect((await login(via('2001:db8:5:6:aaaa::2', '1.1.1.2'))).allowed).toBe(true);
    const third = await login(via('2001:db8:5:6:ffff:ffff:ffff:ffff', '1.1.1.3'));
    expect({ status: third.status, error: JSON.parse(third.body!).error }).toEqual({
      status: 429,
      error: 'rate_limited',
    });
    expect(third.clientHeaders['retry-after']).toMatch(/^\d+$/);
  });
});

describe('host confusion', () => {
  it('spellings of admin.example.com reach its route', async () => {
    for (const host of ['ADMIN.example.com', 'admin.example.com.', 'admin.example.com:8443', 'Admin.Example.Com.:443'])
      await expectProtected({ host, path: '/x' }, 'admin-host');
  });

  it('anything that is not a valid authority is 400', async () => {
    for (const host of [
      '',
      'user@admin.example.com',
      '[admin.example.com]',
      'admin.example.com,www.example.com',
      'admin.example.com ',
      'admin.example.com..',
      'admin%2eexample.com',
      '127.1',
    ]) {
      await expect400({ host, path: '/x' }, 'host_invalid');
    }
  });
});

describe('path confusion', () => {
  it('other spellings of /admin and /v1/secret reach their routes', async () => {
    for (const [path, route] of [
      ['/ADMIN', 'admin'],
      ['/Admin/x', 'admin'],
      ['/admin.json', 'admin'],
      ['/v1/secret/', 'secret'],
      ['/V1/Secret', 'secret'],
      ['/v1/secret.json', 'secret'],
    ]) {
      await expectProtected({ path }, route);
    }
  });

  it('encoded whitespace, controls, delimiters, trailing dots, invalid UTF-8 and confusables are 400', async () => {
    for (const [path, reason] of [
      ['/admin%20', 'path_encoded_whitespace'],
      ['/admin%C2%A0', 'path_encoded_whitespace'],
      ['/admin%09', 'path_encoded_control'],
      ['/admin%3Fx', 'path_encoded_delimiter'],
      ['/admin%23', 'path_encoded_delimiter'],
      ['/admin.', 'path_trailing_dot'],
      ['/public/%C0%AE%C0%AE/admin', 'path_invalid_utf8'],
      ['/public/%E0%80%AE%E0%80%AE/admin', 'path_invalid_utf8'],
      ['/%EF%BD%81dmin', 'path_confusable'],
    ]) {
      await expect400({ path }, reason);
    }
  });
});

describe('credentials in the query', () => {
  it('a header credential plus ?access_token= is 400 multiple_credentials; a lone ?access_token= is 400 access_token_in_query', async () => {
    await expect400(
      { method: 'POST', path: '/v1/items/7?access_token=abc', headers: { 'x-api-key': writer } },
      'multiple_credentials',
    );
    await expect400(
      { method: 'POST', path: `/v1/items/7?api_key=${writer}`, headers: { authorization: `Bearer ${writer}` } },
      'multiple_credentials',
    );
    await expect400({ method: 'POST', path: `/v1/items/7?access_token=${writer}` }, 'access_token_in_query');
  });

  it('credentials in the query never reach the upstream: the accepted API key, and access_token on a public route', async () => {
    const key = await svc.envoy({ method: 'POST', path: `/v1/items/7?page=2&api_key=${writer}` });
    expect(key.allowed).toBe(true);
    expect(key.response.ok_response?.query_parameters_to_remove).toEqual(['api_key']);
    expect(key.upstreamPath).toBe('/v1/items/7?page=2');
    const pub = await svc.envoy({ path: '/docs?access_token=secret-value&x=1&Access_Token=other' });
    expect(pub.allowed).toBe(true);
    expect(pub.upstreamPath).toBe('/docs?x=1');
    expect(JSON.stringify(pub.upstreamHeaders)).not.toContain('secret-value');
  });
});

describe('request-derived log fields', () => {
  it('a live API key in the method, request id, path or X-Forwarded-For is never logged', async () => {
    const before = svc.logs.length;
    const m = await svc.envoy({ method: writer, path: '/v1/items/7' });
    expect(m.status).toBe(400);
    await svc.envoy({ path: `/v1/keys/${writer}`, headers: { 'x-request-id': writer } });
    await svc.envoy({ path: '/v1/fenced', headers: { 'x-forwarded-for': via(writer) } });
    await svc.envoy({ method: 'BREW', path: '/v1/secret', headers: { 'x-request-id': 'x'.repeat(5000) } });
    const lines = svc.logs.slice(before);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const all = lines.join('\n');
    expect(all).not.toContain(writer);
    expect(all).not.toContain(writer.slice(4, 30));
    expect(all).not.toContain('x'.repeat(200));
    const entries = lines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'denied' || e.msg === 'allowed');
    expect(entries.map((e) => e.method)).toContain('_OTHER');
    expect(entries.find((e) => e.reason === 'method_invalid')).toMatchObject({ method: '_OTHER', status: 400 });
    // The test client's own x-request-id line and the key, joined with "," as Envoy joins repeated headers.
    expect(entries.find((e) => e.path === '/v1/keys/[redacted]')).toMatchObject({ request_id: '[redacted]' });
    expect(entries.find((e) => e.reason === 'source_ip_invalid')).toMatchObject({ peer_ip: '10.1.2.3' });
    expect(entries.find((e) => e.method === '_OTHER' && e.path === '/v1/secret')!.request_id).toMatch(
      /^req-[a-z0-9]+,x{100,128}…$/,
    );
    for (const e of entries) expect(e.source_ip === undefined || /^[0-9a-f.:]+$/.test(e.source_ip)).toBe(true);
  });
});
