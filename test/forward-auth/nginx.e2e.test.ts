// End to end through a real nginx running the shipped deploy/nginx/ files: client -> nginx
// (auth_request) -> Portcullis /authz -> nginx -> echo upstream. Asserts what the client and the
// upstream actually see, including the statuses nginx cannot pass through by itself (429, 503).
// @module-tag nginx
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';
import { httpRequest, seenHeader, startEcho, startResettingServer, type EchoSeen } from './support/http.ts';
import { nginxConfigTest, startNginx, type RunningNginx } from './support/nginx.ts';

let svc: TestService;
let nginx: RunningNginx;
let echo: Awaited<ReturnType<typeof startEcho>>;
let key: string;
let writerKey: string;
let down: Awaited<ReturnType<typeof startResettingServer>>;

function config(deadPort: number): string {
  // Opaque tokens need introspection, and its endpoint is down (503).
  return `
realm: api.example.com
forward_auth: { enabled: true }
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
  introspection:
    endpoint: http://127.0.0.1:${deadPort}/introspect
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
`;
}

beforeAll(async () => {
  const dir = tempDir();
  const store = FileKeyStore.init(join(dir, 'keys.yaml'));
  key = (await createKey(store, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'] })).key;
  writerKey = (await createKey(store, 'pcl', { clientId: 'partner-w', scopes: ['orders:write'] })).key;
  down = await startResettingServer();
  svc = await startService(config(down.port), { dir });
  echo = await startEcho();
  nginx = await startNginx({ portcullisPort: svc.service.ops.port, upstreamPort: echo.port });
});

afterAll(async () => {
  await nginx?.stop();
  await echo?.close();
  await svc?.stop();
  await down?.close();
});

const call = (path: string, headers: Array<[string, string]> = [], method = 'GET') =>
  httpRequest(nginx.port, { method, path, headers });

function lastSeen(): EchoSeen {
  expect(echo.seen.length).toBeGreaterThan(0);
  return echo.seen[echo.seen.length - 1];
}

function json(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new Error(`not JSON: ${body}`);
  }
}

function expectNeverReachedUpstream(before: number) {
  expect(echo.seen.length).toBe(before);
}

describe('nginx auth_request in front of an echo upstream', () => {
  it('no credential: 401 with the Bearer realm challenge and the JSON body; upstream never called', async () => {
    const before = echo.seen.length;
    const r = await call('/v1/orders');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com"');
    // One challenge, not one from auth_request plus one from the deny location.
    expect(r.rawHeaders.filter((h) => h.toLowerCase() === 'www-authenticate')).toHaveLength(1);
    expect(r.headers['content-type']).toBe('application/json');
    expect(json(r.body)).toEqual({ error: 'missing_credentials', error_description: 'Authentication is required' });
    expect(r.headers['x-portcullis-status']).toBeUndefined();
    expect(r.headers['x-portcullis-body']).toBeUndefined();
    expectNeverReachedUpstream(before);
  });

  it('valid API key: 200; upstream sees the trusted X-Client-Id, not the spoofed X-User-Id, and no key', async () => {
    const r = await call('/v1/orders/7?page=2', [
      ['X-Api-Key', key],
      ['X-User-Id', 'admin'],
      ['X-Client-Id', 'someone-else'],
      ['X-Scopes', 'admin:all'],
      ['X-Auth-Route', 'spoofed'],
    ]);
    expect(r.status).toBe(200);
    const seen = lastSeen();
    expect(seen.url).toBe('/v1/orders/7?page=2');
    expect(seenHeader(seen, 'x-client-id')).toEqual(['partner-a']);
    // The key's record names no subject, so no x-user-id; above all "admin" never arrives.
    expect(seenHeader(seen, 'x-user-id')).toEqual([]);
    expect(seenHeader(seen, 'x-scopes')).toEqual(['orders:read']);
    expect(seenHeader(seen, 'x-auth-method')).toEqual(['api-key']);
    expect(seenHeader(seen, 'x-auth-route')).toEqual([]);
    expect(seenHeader(seen, 'x-api-key')).toEqual([]);
    expect(JSON.stringify(seen.headers)).not.toContain('admin');
    // The control headers of the auth subrequest never reach the upstream.
    for (const h of ['x-original-uri', 'x-original-method', 'x-portcullis-proxy', 'x-portcullis-status'])
      expect(seenHeader(seen, h)).toEqual([]);
  });

  it('public route: allowed without a credential, and a spoofed identity header is cleared', async () => {
    const r = await call('/public/info', [
      ['X-User-Id', 'admin'],
      ['X-Client-Id', 'evil'],
    ]);
    expect(r.status).toBe(200);
    const seen = lastSeen();
    expect(seen.url).toBe('/public/info');
    expect(seenHeader(seen, 'x-user-id')).toEqual([]);
    expect(seenHeader(seen, 'x-client-id')).toEqual([]);
  });

  it('insufficient scope: 403 with the insufficient_scope challenge and JSON body', async () => {
    const before = echo.seen.length;
    const r = await call('/v1/orders', [['X-Api-Key', key]], 'POST');
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBe(
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    );
    expect(json(r.body)).toEqual({
      error: 'insufficient_scope',
      error_description: 'The credential lacks a required scope',
    });
    expectNeverReachedUpstream(before);
  });

  it('a POST with a body is authorized on its method and path (body not sent to Portcullis)', async () => {
    const r = await httpRequest(nginx.port, {
      method: 'POST',
      path: '/v1/orders',
      headers: [
        ['x-api-key', writerKey],
        ['content-type', 'application/json'],
      ],
      body: '{"qty":1}',
    });
    expect(r.status).toBe(200);
    expect(lastSeen().method).toBe('POST');
    expect(seenHeader(lastSeen(), 'x-client-id')).toEqual(['partner-w']);
  });

  it('invalid API key: 401 invalid_token', async () => {
    const r = await call('/v1/orders', [['X-Api-Key', 'pcl_notakeyatall']]);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_token"');
    expect((json(r.body) as { error: string }).error).toBe('invalid_token');
  });

  it('malformed (method-override header): 400 invalid_request with its challenge, mapped through nginx', async () => {
    const before = echo.seen.length;
    const r = await call('/v1/orders', [
      ['X-Api-Key', key],
      ['X-HTTP-Method-Override', 'DELETE'],
    ]);
    expect(r.status).toBe(400);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="api.example.com", error="invalid_request"');
    expect(json(r.body)).toEqual({ error: 'invalid_request', error_description: 'The request is malformed' });
    expectNeverReachedUpstream(before);
  });

  it('two Authorization headers: nginx itself rejects the request with 400 before asking Portcullis', async () => {
    const before = echo.seen.length;
    const r = await call('/v1/orders', [
      ['Authorization', 'Bearer a'],
      ['Authorization', 'Bearer b'],
    ]);
    expect(r.status).toBe(400);
    expectNeverReachedUpstream(before);
  });

  it('no route matched: 403 forbidden without a challenge', async () => {
    const r = await call('/nowhere');
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBeUndefined();
    expect(json(r.body)).toEqual({ error: 'forbidden', error_description: 'Access to this resource is forbidden' });
  });

  it('rate limit: first call 200 with RateLimit headers, then 429 with Retry-After through nginx', async () => {
    const before = echo.seen.length;
    const ok = await call('/v1/reports/daily', [['X-Api-Key', key]]);
    expect(ok.status).toBe(200);
    expect(ok.headers['ratelimit-policy']).toBe('"tight";q=1;w=3600');
    expect(ok.headers['ratelimit']).toMatch(/^"tight";r=0;t=\d+$/);
    const limited = await call('/v1/reports/daily', [['X-Api-Key', key]]);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['ratelimit-policy']).toBe('"tight";q=1;w=3600');
    expect(json(limited.body)).toEqual({ error: 'rate_limited', error_description: 'Too many requests' });
    expect(limited.headers['www-authenticate']).toBeUndefined();
    expect(echo.seen.length).toBe(before + 1);
  });

  it('a dependency down (introspection unreachable): 503 with Retry-After through nginx, never 500', async () => {
    const before = echo.seen.length;
    const r = await call('/v1/orders', [['Authorization', 'Bearer opaque-token-abc']]);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    expect(json(r.body)).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'The service is temporarily unavailable',
    });
    expectNeverReachedUpstream(before);
  });

  it('a client cannot steer the auth subrequest with forwarding or control headers', async () => {
    // X-Original-URI pointing at the public route and a Traefik-style X-Forwarded-Uri: nginx's
    // config overwrites / clears them, so Portcullis still decides on the real path.
    const r = await call('/v1/orders', [
      ['X-Original-URI', '/public/x'],
      ['X-Original-Method', 'GET'],
      ['X-Forwarded-Uri', '/public/x'],
      ['X-Portcullis-Proxy', 'none'],
    ]);
    expect(r.status).toBe(401);
    expect(json(r.body)).toMatchObject({ error: 'missing_credentials' });
  });

  it('never writes the credential to Portcullis or nginx logs', async () => {
    await call('/v1/orders', [['X-Api-Key', key]]);
    expect(svc.logs.join('\n')).not.toContain(key);
    expect(nginx.log.join('')).not.toContain(key);
  });
});

describe('Portcullis unreachable', () => {
  it('nginx answers 503 temporarily_unavailable (fail closed), not 500 and not an allow', async () => {
    const before = echo.seen.length;
    const other = await startNginx({ portcullisPort: down.port, upstreamPort: echo.port });
    try {
      const r = await httpRequest(other.port, { path: '/v1/orders', headers: [['X-Api-Key', key]] });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect(json(r.body)).toEqual({
        error: 'temporarily_unavailable',
        error_description: 'The service is temporarily unavailable',
      });
      expectNeverReachedUpstream(before);
    } finally {
      await other.stop();
    }
  });
});

describe('deploy/nginx/nginx.conf (the complete example)', () => {
  it('passes nginx -t with the two included files beside it', () => {
    const r = nginxConfigTest();
    expect(r.output).toContain('syntax is ok');
    expect(r.status).toBe(0);
  });
});
