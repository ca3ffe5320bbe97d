// Contract: the forward-auth endpoint on a running Portcullis, called over real HTTP the way each
// proxy calls it. Envoy's http_service is simulated from our shipped envoy-http-service.yaml and
// compared with the gRPC path on the same requests; Traefik and nginx styles by their headers;
// and callers outside forward_auth.trusted_proxies are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';
import { envoyHttpCheck, envoyHttpSettings } from './support/envoy-http.ts';
import { httpRequest, startResettingServer, type HttpResult } from './support/http.ts';

// The test's "proxy" connects from 127.0.0.2 (all of 127/8 is loopback on Linux); 127.0.0.1 is
// the untrusted stranger.
const PROXY = '127.0.0.2';
const STRANGER = '127.0.0.1';

let svc: TestService;
let port: number;
let key: string;
let writerKey: string;
let cidrKey: string;
let down: Awaited<ReturnType<typeof startResettingServer>>;

const config = (forwardAuth: string) => `
realm: api.example.com
forward_auth: ${forwardAuth}
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
  introspection:
    endpoint: http://127.0.0.1:${down.port}/introspect
    allow_http: true
    client_id: gateway
    client_secret: not-a-real-secret
    audiences: [https://api.example.com]
    timeout_ms: 200
    retry_after_seconds: 7
rate_limits:
  - { name: tight, key: client_id, limit: 1, window_seconds: 3600 }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [api-key, oauth2], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:write] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: tight }
  - { name: admin, match: { path_prefix: /admin, host: admin.example.com }, auth: [api-key] }
`;
const TRUSTED = '{ enabled: true, trusted_proxies: [127.0.0.2/32, "::1/128"] }';

beforeAll(async () => {
  down = await startResettingServer();
  const dir = tempDir();
  const store = FileKeyStore.init(join(dir, 'keys.yaml'));
  key = (await createKey(store, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'], subject: 'svc-orders' })).key;
  writerKey = (await createKey(store, 'pcl', { clientId: 'partner-w', scopes: ['orders:write'] })).key;
  cidrKey = (
    await createKey(store, 'pcl', { clientId: 'partner-c', scopes: ['orders:read'], cidrs: ['198.51.100.0/24'] })
  ).key;
  svc = await startService(config(TRUSTED), { dir });
  port = svc.service.ops.port;
});
afterAll(async () => {
  await svc?.stop();
  await down?.close();
});

const fromProxy = (o: Parameters<typeof httpRequest>[1]) => httpRequest(port, { localAddress: PROXY, ...o });
const traefik = (method: string, uri: string, headers: Array<[string, string]> = [], host = 'api.example.com') =>
  fromProxy({
    path: '/authz',
    host: 'portcullis:9192',
    headers: [
      ['X-Forwarded-Method', method],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', host],
      ['X-Forwarded-Uri', uri],
      ['X-Forwarded-For', '203.0.113.50'],
      ...headers,
    ],
  });
const body = (r: { body: string }) => JSON.parse(r.body) as { error: string; error_description: string };

function expectNoLeak(r: HttpResult, secret: string) {
  expect(r.body).not.toContain(secret);
  expect(JSON.stringify(r.headers)).not.toContain(secret);
}

describe('Envoy http_service (path_prefix /authz), as configured in envoy/envoy-http-service.yaml', () => {
  it('API key: 200; upstream gets the trusted identity, not the spoofed one, and not the key', async () => {
    const out = await envoyHttpCheck(
      port,
      {
        path: '/v1/orders/7?page=2',
        headers: [
          ['X-Api-Key', key],
          ['x-user-id', 'admin'],
          ['x-request-id', 'r-1'],
        ],
      },
      { fromAddress: PROXY },
    );
    expect(out.status).toBe(200);
    expect(out.upstreamHeaders['x-user-id']).toBe('svc-orders');
    expect(out.upstreamHeaders['x-client-id']).toBe('partner-a');
    expect(out.upstreamHeaders['x-scopes']).toBe('orders:read');
    expect(out.upstreamHeaders['x-auth-method']).toBe('api-key');
    expect(out.upstreamHeaders['x-api-key']).toBeUndefined();
    // The removal list never names a header the answer also sets (Envoy would drop the trusted value).
    const removed = (out.authz.headers['x-envoy-auth-headers-to-remove'] as string).split(',').map((s) => s.trim());
    expect(removed).toContain('x-api-key');
    for (const h of ['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method']) expect(removed).not.toContain(h);
    expectNoLeak(out.authz, key);
  });

  it('every identity header Portcullis sets is one Envoy copies upstream (allowed_upstream_headers)', async () => {
    const out = await envoyHttpCheck(
      port,
      { path: '/v1/orders', headers: [['x-api-key', key]] },
      { fromAddress: PROXY },
    );
    const settings = envoyHttpSettings();
    for (const name of ['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method']) {
      expect(out.authz.headers[name]).toBeDefined();
      expect(settings.allowedUpstream).toContain(name);
    }
  });

  // The same client requests through the gRPC path (test/support/envoy.ts) and the HTTP path:
  // same status, challenge, body, Retry-After, and the same identity upstream.
  const cases: Array<
    [string, { method?: string; path: string; host?: string; headers?: () => Array<[string, string]> }]
  > = [
    ['no credential', { path: '/v1/orders' }],
    [
      'valid key',
      {
        path: '/v1/orders/1',
        headers: () => [
          ['x-api-key', key],
          ['X-User-Id', 'admin'],
        ],
      },
    ],
    ['HEAD is GET', { method: 'HEAD', path: '/v1/orders', headers: () => [['x-api-key', key]] }],
    ['unknown key', { path: '/v1/orders', headers: () => [['x-api-key', 'pcl_doesnotexist']] }],
    ['key as Bearer', { path: '/v1/orders', headers: () => [['authorization', `Bearer ${key}`]] }],
    ['empty Bearer', { path: '/v1/orders', headers: () => [['authorization', 'Bearer ']] }],
    [
      'two Authorization lines',
      {
        path: '/v1/orders',
        headers: () => [
          ['authorization', 'Bearer a'],
          ['Authorization', 'Bearer b'],
        ],
      },
    ],
    [
      'method override',
      {
        path: '/v1/orders',
        headers: () => [
          ['x-api-key', key],
          ['x-http-method-override', 'DELETE'],
        ],
      },
    ],
    ['insufficient scope', { method: 'POST', path: '/v1/orders', headers: () => [['x-api-key', key]] }],
    ['write scope', { method: 'POST', path: '/v1/orders', headers: () => [['x-api-key', writerKey]] }],
    ['host-bound route, wrong host', { path: '/admin', headers: () => [['x-api-key', key]] }],
    ['host-bound route', { path: '/admin', host: 'admin.example.com', headers: () => [['x-api-key', key]] }],
    ['no route', { path: '/elsewhere', headers: () => [['x-api-key', key]] }],
    ['dot segment', { path: '/public/../v1/orders' }],
    ['encoded slash', { path: '/v1/orders%2F..%2Fadmin', headers: () => [['x-api-key', key]] }],
    ['public', { path: '/public/x?y=1', headers: () => [['x-client-id', 'evil']] }],
    ['source CIDR not matched', { path: '/v1/orders', headers: () => [['x-api-key', cidrKey]] }],
  ];
  for (const [name, c] of cases) {
    it(`same answer as the gRPC path: ${name}`, async () => {
      const headers = c.headers?.() ?? [];
      const grpc = await svc.envoy({
        method: c.method ?? 'GET',
        path: c.path,
        host: c.host,
        headers,
        sourceIp: '203.0.113.9',
      });
      const http = await envoyHttpCheck(
        port,
        { method: c.method, path: c.path, host: c.host, headers, clientIp: '203.0.113.9' },
        { fromAddress: PROXY },
      );
      expect(http.status).toBe(grpc.status);
      if (grpc.allowed) {
        for (const h of ['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method', 'x-api-key', 'authorization']) {
          expect([h, http.upstreamHeaders[h]]).toEqual([h, grpc.upstreamHeaders[h]]);
        }
      } else {
        if (c.method !== 'HEAD') expect(http.body).toBe(grpc.body);
        for (const h of ['www-authenticate', 'retry-after', 'content-type'])
          expect([h, http.clientHeaders[h]]).toEqual([h, grpc.clientHeaders[h]]);
      }
    });
  }

  it('source CIDRs are checked against the client address Envoy states (x-real-ip), not the XFF Envoy appends to', async () => {
    const inside = await envoyHttpCheck(
      port,
      { path: '/v1/orders', headers: [['x-api-key', cidrKey]], clientIp: '198.51.100.7' },
      { fromAddress: PROXY },
    );
    expect(inside.status).toBe(200);
    // A client-sent X-Real-IP is overwritten by headers_to_add.
    const spoof = await envoyHttpCheck(
      port,
      {
        path: '/v1/orders',
        headers: [
          ['x-api-key', cidrKey],
          ['x-real-ip', '198.51.100.7'],
        ],
        clientIp: '203.0.113.9',
      },
      { fromAddress: PROXY },
    );
    expect(spoof.status).toBe(403);
    expect(body(spoof).error).toBe('forbidden');
  });

  it('a 503 from Portcullis becomes status_on_error in HTTP mode: 503 reaches the client, without body (documented)', async () => {
    const out = await envoyHttpCheck(
      port,
      { path: '/v1/orders', headers: [['authorization', 'Bearer opaque-token-xyz']] },
      { fromAddress: PROXY },
    );
    expect(out.authz.status).toBe(503);
    expect(out.authz.headers['retry-after']).toBe('7');
    expect(body(out.authz)).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'The service is temporarily unavailable',
    });
    expect(out.status).toBe(503);
    expect(out.body).toBe('');
  });

  it('429 passes through Envoy with Retry-After and the RateLimit headers', async () => {
    const first = await envoyHttpCheck(
      port,
      { path: '/v1/reports/a', headers: [['x-api-key', writerKey]] },
      { fromAddress: PROXY },
    );
    expect(first.status).toBe(200);
    expect(first.clientHeaders['ratelimit-policy']).toBe('"tight";q=1;w=3600');
    const second = await envoyHttpCheck(
      port,
      { path: '/v1/reports/a', headers: [['x-api-key', writerKey]] },
      { fromAddress: PROXY },
    );
    expect(second.status).toBe(429);
    expect(Number(second.clientHeaders['retry-after'])).toBeGreaterThan(0);
    expect(second.clientHeaders['ratelimit-policy']).toBe('"tight";q=1;w=3600');
    expect(body(second)).toEqual({ error: 'rate_limited', error_description: 'Too many requests' });
  });

  it('a target that is not prefix + path (absolute-form, or "/x/../authz/…") is 400, not a decision on another path', async () => {
    const abs = await fromProxy({ path: `http://evil.example/authz/public/x`, headers: [['x-api-key', key]] });
    expect(abs.status).toBe(400);
    expect(body(abs).error).toBe('invalid_request');
    const dotted = await fromProxy({ path: '/x/../authz/public/x' });
    expect(dotted.status).toBe(400);
    expect(abs.headers['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_request"');
  });

  it('a prefixed call that also names an original URI (a Traefik or nginx pointed at /authz/) is 400', async () => {
    const r = await fromProxy({
      path: '/authz/public/x',
      headers: [
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-Method', 'GET'],
      ],
    });
    expect(r.status).toBe(400);
    expect(body(r).error).toBe('invalid_request');
  });
});

describe('Traefik ForwardAuth (GET /authz with X-Forwarded-Method/-Uri/-Host)', () => {
  it('decides on the forwarded method, URI and host, and answers with the identity headers', async () => {
    const r = await traefik('POST', '/v1/orders?draft=1', [
      ['X-Api-Key', writerKey],
      ['X-User-Id', 'admin'],
    ]);
    expect(r.status).toBe(200);
    expect(r.headers['x-client-id']).toBe('partner-w');
    // The key's record names no subject: no x-user-id (the client id is not a user).
    expect(r.headers['x-user-id']).toBeUndefined();
    expect(r.headers['x-scopes']).toBe('orders:write');
    expectNoLeak(r, writerKey);
  });

  it('the forwarded method matters: the same key and URI as GET is a different route', async () => {
    const r = await traefik('GET', '/v1/orders', [['X-Api-Key', writerKey]]);
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBe(
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:read"',
    );
    expect(body(r).error).toBe('insufficient_scope');
  });

  it('host-bound routes use X-Forwarded-Host, not the Host of the auth call', async () => {
    expect((await traefik('GET', '/admin', [['X-Api-Key', key]], 'admin.example.com')).status).toBe(200);
    expect((await traefik('GET', '/admin', [['X-Api-Key', key]], 'api.example.com')).status).toBe(403);
  });

  it('no credential: 401 with the challenge and JSON body, passed through as is', async () => {
    const r = await traefik('GET', '/v1/orders');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com"');
    expect(r.headers['content-type']).toBe('application/json');
    expect(body(r)).toEqual({ error: 'missing_credentials', error_description: 'Authentication is required' });
  });

  it('source CIDRs use the last X-Forwarded-For entry (the one Traefik appended), not a spoofed first one', async () => {
    const ok = await fromProxy({
      path: '/authz',
      headers: [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Host', 'api.example.com'],
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-For', '203.0.113.1, 198.51.100.20'],
        ['x-api-key', cidrKey],
      ],
    });
    expect(ok.status).toBe(200);
    const spoofed = await fromProxy({
      path: '/authz',
      headers: [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Host', 'api.example.com'],
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-For', '198.51.100.20, 203.0.113.1'],
        ['x-api-key', cidrKey],
      ],
    });
    expect(spoofed.status).toBe(403);
  });

  it('a dependency down is 503 with Retry-After and the JSON body (Traefik passes any status)', async () => {
    const r = await traefik('GET', '/v1/orders', [['Authorization', 'Bearer opaque-token-xyz']]);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    expect(body(r).error).toBe('temporarily_unavailable');
  });

  it('the forwarding headers are not identity: they never come back as identity and do not reach decide', async () => {
    const r = await traefik('GET', '/public/x', [['X-Forwarded-User', 'admin']]);
    expect(r.status).toBe(200);
    expect(r.headers['x-user-id']).toBeUndefined();
    // Removed on the way upstream (Envoy style) is only what the request itself carried and is stripped.
    const removed = String(r.headers['x-envoy-auth-headers-to-remove'] ?? '');
    for (const h of ['x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-host']) expect(removed).not.toContain(h);
  });

  const malformed: Array<[string, Array<[string, string]>]> = [
    [
      'method missing',
      [
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-Host', 'api.example.com'],
      ],
    ],
    [
      'URI not absolute',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', 'v1/orders'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'URI empty',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', ''],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'URI bad escape',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/v1/%zz'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'URI with dot segments',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/public/../v1/orders'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'URI very long',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/' + 'a'.repeat(9000)],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'method lowercase',
      [
        ['X-Forwarded-Method', 'get'],
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'method garbage',
      [
        ['X-Forwarded-Method', 'G E T'],
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'URI repeated',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/public/x'],
        ['X-Forwarded-Uri', '/v1/orders'],
        ['X-Forwarded-Host', 'h'],
      ],
    ],
    [
      'both nginx and Traefik names',
      [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/public/x'],
        ['X-Original-URI', '/v1/orders'],
        ['X-Original-Method', 'GET'],
      ],
    ],
    ['no original request at all', [['X-Api-Key', 'pcl_x']]],
  ];
  for (const [name, headers] of malformed) {
    it(`malformed (${name}): 400 invalid_request, never 500`, async () => {
      const r = await fromProxy({ path: '/authz', headers });
      expect(r.status).toBe(400);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_request"');
      expect(body(r)).toEqual({ error: 'invalid_request', error_description: 'The request is malformed' });
    });
  }
});

describe('nginx auth_request style (X-Original-Method/-URI; X-Portcullis-Proxy: nginx)', () => {
  const nginx = (method: string, uri: string, headers: Array<[string, string]> = []) =>
    fromProxy({
      path: '/authz',
      headers: [
        ['X-Original-Method', method],
        ['X-Original-URI', uri],
        ['X-Real-IP', '203.0.113.9'],
        ['X-Portcullis-Proxy', 'nginx'],
        ...headers,
      ],
    });

  it('allowed: 200 with the identity headers', async () => {
    const r = await nginx('GET', '/v1/orders', [['x-api-key', key]]);
    expect(r.status).toBe(200);
    expect(r.headers['x-client-id']).toBe('partner-a');
  });

  it('401 stays 401 (auth_request passes it, with WWW-Authenticate)', async () => {
    const r = await nginx('GET', '/v1/orders');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com"');
    expect(r.headers['x-portcullis-status']).toBe('401');
  });

  it('statuses auth_request cannot carry become 403 + X-Portcullis-Status + X-Portcullis-Body', async () => {
    const r = await nginx('GET', '/v1/orders', [['authorization', 'Bearer opaque-token-xyz']]);
    expect(r.status).toBe(403);
    expect(r.headers['x-portcullis-status']).toBe('503');
    expect(JSON.parse(r.headers['x-portcullis-body'] as string)).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'The service is temporarily unavailable',
    });
    expect(r.headers['retry-after']).toBe('7');
    const bad = await nginx('GET', '/v1/orders', [
      ['x-http-method-override', 'PUT'],
      ['x-api-key', key],
    ]);
    expect(bad.status).toBe(403);
    expect(bad.headers['x-portcullis-status']).toBe('400');
  });

  it('a malformed nginx-mode call is mapped too (400 travels in X-Portcullis-Status, not as a 400 nginx would turn into 500)', async () => {
    const r = await fromProxy({
      path: '/authz',
      headers: [
        ['X-Original-URI', '/v1/orders'],
        ['X-Portcullis-Proxy', 'nginx'],
      ],
    });
    expect(r.status).toBe(403);
    expect(r.headers['x-portcullis-status']).toBe('400');
    expect(JSON.parse(r.headers['x-portcullis-body'] as string).error).toBe('invalid_request');
  });

  it('source CIDRs use X-Real-IP, which the shipped config sets from $remote_addr', async () => {
    const r = await fromProxy({
      path: '/authz',
      headers: [
        ['X-Original-Method', 'GET'],
        ['X-Original-URI', '/v1/orders'],
        ['X-Real-IP', '198.51.100.3'],
        ['x-api-key', cidrKey],
      ],
    });
    expect(r.status).toBe(200);
  });

  it('without X-Portcullis-Proxy the statuses are the real ones', async () => {
    const r = await fromProxy({
      path: '/authz',
      headers: [
        ['X-Original-Method', 'POST'],
        ['X-Original-URI', '/v1/orders'],
        ['x-api-key', key],
      ],
    });
    expect(r.status).toBe(403);
    expect(r.headers['x-portcullis-status']).toBeUndefined();
  });
});

describe('forward_auth.trusted_proxies', () => {
  it('a caller outside the list gets 403 forbidden, even with a valid key and forwarding headers', async () => {
    const before = svc.logs.length;
    const r = await httpRequest(port, {
      localAddress: STRANGER,
      path: '/authz',
      headers: [
        ['X-Forwarded-Method', 'GET'],
        ['X-Forwarded-Uri', '/public/x'],
        ['X-Forwarded-Host', 'api.example.com'],
        ['x-api-key', key],
      ],
    });
    expect(r.status).toBe(403);
    expect(body(r)).toEqual({ error: 'forbidden', error_description: 'Access to this resource is forbidden' });
    expect(r.headers['x-client-id']).toBeUndefined();
    expect(r.headers['www-authenticate']).toBeUndefined();
    const envoyStyle = await httpRequest(port, { localAddress: STRANGER, path: '/authz/public/x' });
    expect(envoyStyle.status).toBe(403);
    const logged = svc.logs.slice(before).join('\n');
    expect(logged).toContain('forward_auth.trusted_proxies');
    expect(logged).toContain(STRANGER);
    expect(logged).not.toContain(key);
  });

  it('counts refused calls in portcullis_decisions_total with reason forward_auth_untrusted_peer', async () => {
    const m = await httpRequest(port, { path: '/metrics' });
    expect(m.body).toMatch(/portcullis_decisions_total\{[^}]*reason="forward_auth_untrusted_peer"[^}]*\} [1-9]/);
  });

  it('never logs a credential sent to the endpoint', async () => {
    await traefik('GET', '/v1/orders', [
      ['x-api-key', key],
      ['authorization', 'Bearer opaque-secret-token'],
    ]);
    const all = svc.logs.join('\n');
    expect(all).not.toContain(key);
    expect(all).not.toContain('opaque-secret-token');
  });

  it('follows config reloads: trusting 127.0.0.1 lets it in; enabled: false answers 404', async () => {
    writeFileSync(svc.configFile, config('{ enabled: true, trusted_proxies: [127.0.0.0/8] }'));
    await waitFor(
      async () => (await httpRequest(port, { localAddress: STRANGER, path: '/authz/public/x' })).status === 200,
      10_000,
    );
    writeFileSync(svc.configFile, config('{ enabled: false }'));
    await waitFor(
      async () => (await httpRequest(port, { localAddress: PROXY, path: '/authz/public/x' })).status === 404,
      10_000,
    );
    writeFileSync(svc.configFile, config(TRUSTED));
    await waitFor(async () => (await fromProxy({ path: '/authz/public/x' })).status === 200, 10_000);
  });
});
