// Contract: a real grpc-js client built from Envoy's protos against the running server, asserting
// what the client and the upstream see once Envoy has applied the answer (test/support/envoy.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { join } from 'node:path';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { envoyCheckRequest, type CheckResponseMsg } from '../support/envoy.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';

const CONFIG = `
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
rate_limits:
  - { name: tight, key: client_id, limit: 2, window_seconds: 3600 }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:write] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: tight }
`;

let svc: TestService;
let key: string;
let keyId: string;

beforeAll(async () => {
  const dir = tempDir();
  const created = await createKey(FileKeyStore.init(join(dir, 'keys.yaml')), 'pcl', {
    clientId: 'partner-a',
    scopes: ['orders:read'],
    subject: 'svc-orders',
  });
  key = created.key;
  keyId = created.record.id;
  svc = await startService(CONFIG, { dir });
});
afterAll(async () => svc?.stop());

function expectSetAndRemoveDisjoint(res: CheckResponseMsg) {
  const set = (res.ok_response?.headers ?? []).map((h) => h.header.key);
  for (const r of res.ok_response?.headers_to_remove ?? []) expect(set).not.toContain(r);
}

describe('allowed answers', () => {
  it('API key: upstream sees trusted identity headers, not the key; every set is append:false', async () => {
    const out = await svc.envoy({ path: '/v1/orders/7?page=2', headers: { 'X-API-Key': key, 'x-user-id': 'admin' } });
    expect(out.allowed).toBe(true);
    expect(out.response.status?.code ?? 0).toBe(0);
    expect(out.upstreamHeaders['x-user-id']).toBe('svc-orders');
    expect(out.upstreamHeaders['x-client-id']).toBe('partner-a');
    expect(out.upstreamHeaders['x-scopes']).toBe('orders:read');
    expect(out.upstreamHeaders['x-auth-method']).toBe('api-key');
    expect(out.upstreamHeaders['x-api-key']).toBeUndefined();
    for (const h of out.response.ok_response!.headers!) expect(h.append).toEqual({ value: false });
    expectSetAndRemoveDisjoint(out.response);
  });

  it('dynamic metadata is a Struct with camelCase stringValue keys for the access log', async () => {
    const out = await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': key } });
    expect(out.response.dynamic_metadata?.fields).toMatchObject({
      decision: { stringValue: 'allow' },
      method: { stringValue: 'api-key' },
      client_id: { stringValue: 'partner-a' },
      subject: { stringValue: 'svc-orders' },
      route: { stringValue: 'orders-read' },
      reason: { stringValue: 'allowed' },
      key_id: { stringValue: keyId },
    });
  });

  const spoofs: Array<[string, Array<[string, string]>]> = [
    ['lowercase', [['x-user-id', 'admin']]],
    [
      'mixed case',
      [
        ['X-User-Id', 'admin'],
        ['X-SCOPES', 'admin:all'],
      ],
    ],
    [
      'duplicate lines',
      [
        ['x-user-id', 'admin'],
        ['X-User-ID', 'root'],
      ],
    ],
    [
      'underscore variant',
      [
        ['x_user_id', 'admin'],
        ['X_Client_Id', 'evil'],
      ],
    ],
    [
      'stripped prefix',
      [
        ['X-Auth-Admin', 'true'],
        ['x-auth-method', 'jwt'],
      ],
    ],
  ];
  for (const raw of [false, true]) {
    for (const [name, headers] of spoofs) {
      it(`spoofed identity headers (${name}${raw ? ', encode_raw_headers' : ''}) never reach the upstream`, async () => {
        const out = await svc.envoy({ path: '/v1/orders', headers: [['x-api-key', key], ...headers], rawHeaders: raw });
        expect(out.allowed).toBe(true);
        const up = out.upstreamHeaders;
        expect(up['x-user-id']).toBe('svc-orders');
        expect(up['x-client-id']).toBe('partner-a');
        expect(up['x-scopes']).toBe('orders:read');
        expect(up['x-auth-method']).toBe('api-key');
        for (const k of Object.keys(up)) {
          expect(k.replaceAll('_', '-').startsWith('x-auth-') && k !== 'x-auth-method').toBe(false);
          expect(['x_user_id', 'x_client_id']).not.toContain(k);
        }
        expect(JSON.stringify(up)).not.toMatch(/admin|root|evil/);
        expectSetAndRemoveDisjoint(out.response);
      });
    }
  }

  it('public routes: allowed, spoofed identity headers and unverified credentials removed', async () => {
    const out = await svc.envoy({
      path: '/public/docs',
      headers: { 'X-User-Id': 'admin', 'x-scopes': 'all', authorization: 'Bearer whatever' },
    });
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders['x-user-id']).toBeUndefined();
    expect(out.upstreamHeaders['x-scopes']).toBeUndefined();
    expect(out.upstreamHeaders['authorization']).toBeUndefined();
    expect(out.upstreamHeaders[':path']).toBe('/public/docs'); // pseudo-headers are never removed
  });

  it('rate-limited route: quota on allowed answers (response_headers_to_add), then 429', async () => {
    const first = await svc.envoy({ path: '/v1/reports', headers: { 'x-api-key': key } });
    expect(first.allowed).toBe(true);
    expect(first.clientHeaders['ratelimit-policy']).toBe('"tight";q=2;w=3600');
    expect(first.clientHeaders['ratelimit']).toMatch(/^"tight";r=1;t=\d+$/);
    await svc.envoy({ path: '/v1/reports', headers: { 'x-api-key': key } });
    const third = await svc.envoy({ path: '/v1/reports', headers: { 'x-api-key': key } });
    expect(third.status).toBe(429);
    expect(third.clientHeaders['retry-after']).toMatch(/^\d+$/);
    expect(JSON.parse(third.body!)).toEqual({ error: 'rate_limited', error_description: 'Too many requests' });
  });
});

describe('denied answers: status, challenge and body as the client sees them', () => {
  it.each([
    ['no credential', { path: '/v1/orders' }, 401, 'missing_credentials', 'Bearer realm="api.example.com"'],
    [
      'two Authorization headers',
      {
        path: '/v1/orders',
        headers: [
          ['authorization', 'Bearer a'],
          ['Authorization', 'Bearer b'],
        ] as Array<[string, string]>,
      },
      400,
      'invalid_request',
      'Bearer realm="api.example.com", error="invalid_request"',
    ],
    [
      'unknown key',
      { path: '/v1/orders', headers: { 'x-api-key': 'pcl_' + 'x'.repeat(38) } },
      401,
      'invalid_token',
      'Bearer realm="api.example.com", error="invalid_token"',
    ],
    [
      'wrong kind for the route',
      { path: '/v1/orders', headers: { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' } },
      401,
      'invalid_token',
      'Bearer realm="api.example.com", error="invalid_token"',
    ],
    [
      'missing scope',
      { method: 'POST', path: '/v1/orders', headers: { 'x-api-key': 'KEY' } },
      403,
      'insufficient_scope',
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    ],
    ['no route', { path: '/admin', headers: { 'x-api-key': 'KEY' } }, 403, 'forbidden', undefined],
    [
      'dot segments',
      { path: '/public/../v1/orders' },
      400,
      'invalid_request',
      'Bearer realm="api.example.com", error="invalid_request"',
    ],
  ] as const)('%s', async (_n, init, status, error, www) => {
    const headers =
      'headers' in init
        ? Array.isArray(init.headers)
          ? init.headers
          : Object.fromEntries(Object.entries(init.headers).map(([k, v]) => [k, v === 'KEY' ? key : v]))
        : undefined;
    const out = await svc.envoy({ ...init, headers });
    expect(out.allowed).toBe(false);
    expect(out.response.status?.code).not.toBe(0);
    // Always set: an unset denied status would become 403 in Envoy whatever the gRPC code.
    expect(out.response.denied_response?.status?.code).toBeTruthy();
    expect(out.status).toBe(status);
    expect(out.clientHeaders['www-authenticate']).toBe(www);
    expect(out.clientHeaders['content-type']).toBe('application/json');
    const body = JSON.parse(out.body!);
    expect(body.error).toBe(error);
    expect(typeof body.error_description).toBe('string');
    expect(out.body).not.toContain(key);
    for (const h of out.response.denied_response!.headers!) expect(h.append).toEqual({ value: false });
    expect(out.response.dynamic_metadata?.fields?.decision).toMatchObject({ stringValue: 'deny' });
  });
});

describe('malformed CheckRequests are denied, never an RPC error', () => {
  const cases: Array<[string, unknown]> = [
    ['empty request', {}],
    ['no http attributes', { attributes: { source: {} } }],
    ['http without path', { attributes: { request: { http: { method: 'GET', headers: {} } } } }],
    ['empty path', envoyCheckRequest({ path: '' })],
    ['absolute-form path', envoyCheckRequest({ path: 'http://evil/v1/orders' })],
    ['odd method', envoyCheckRequest({ method: 'G E T', path: '/v1/orders' })],
    [
      'huge header value',
      envoyCheckRequest({ path: '/v1/orders', headers: { authorization: 'Bearer ' + 'a'.repeat(1_000_000) } }),
    ],
    [
      'many headers',
      envoyCheckRequest({
        path: '/v1/orders',
        headers: Array.from({ length: 5000 }, (_, i) => [`x-h-${i}`, 'v'] as [string, string]),
      }),
    ],
    [
      'binary raw header values',
      {
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/v1/orders',
              header_map: {
                headers: [
                  { key: 'x-api-key', raw_value: Buffer.from([0, 255, 254, 10, 13]) },
                  { key: '', raw_value: Buffer.from('x') },
                ],
              },
            },
          },
        },
      },
    ],
    [
      'header named __proto__ and constructor',
      envoyCheckRequest({
        path: '/v1/orders',
        headers: { __proto__: 'x', constructor: 'y', 'x-api-key': 'toString' } as never,
      }),
    ],
  ];
  it.each(cases)('%s', async (_n, req) => {
    const res = await svc.checkRaw(req);
    expect(res.status?.code).not.toBe(0);
    expect([400, 401, 403]).toContain(Number(statusNumber(res.denied_response?.status?.code)));
  });
});

function statusNumber(code: string | number | undefined): number {
  const names: Record<string, number> = { BadRequest: 400, Unauthorized: 401, Forbidden: 403 };
  return typeof code === 'number' ? code : (names[code ?? ''] ?? 0);
}

describe('health and ops', () => {
  it('grpc.health.v1 answers SERVING for "" and envoy.service.auth.v3.Authorization', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const client = new Health(svc.grpcAddress, grpc.credentials.createInsecure()) as unknown as {
      Check: Function;
      close(): void;
    };
    for (const service of ['', 'envoy.service.auth.v3.Authorization']) {
      const res = await new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r))),
      );
      expect(res.status).toBe('SERVING');
    }
    client.close();
  });

  it('/healthz, /readyz and /metrics', async () => {
    expect((await fetch(`${svc.httpBase}/healthz`)).status).toBe(200);
    const ready = await fetch(`${svc.httpBase}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(
      /portcullis_decisions_total\{decision="allow",status="200",reason="allowed",route="orders-read",credential="api-key"\} \d+/,
    );
    expect(metrics).toMatch(
      /portcullis_decisions_total\{decision="deny",status="401",reason="missing_credentials",route="orders-read",credential="none"\} \d+/,
    );
    expect(metrics).toContain('portcullis_check_duration_seconds_bucket');
    expect(metrics).toContain('portcullis_process_cpu_seconds_total');
  });

  it('deny logs carry reason, route and request id, and never a credential', async () => {
    await svc.envoy({
      path: '/v1/orders',
      headers: {
        'x-request-id': 'rid-123',
        'x-api-key': key,
        authorization: 'Bearer secret-token-value',
        cookie: 'session=abc',
      },
    });
    const line = svc.logs.find((l) => l.includes('rid-123'));
    expect(line).toBeDefined();
    const entry = JSON.parse(line!);
    expect(entry).toMatchObject({ msg: 'denied', reason: 'multiple_credentials', route: 'orders-read', status: 400 });
    const all = svc.logs.join('\n');
    expect(all).not.toContain(key);
    expect(all).not.toContain('secret-token-value');
    expect(all).not.toContain('session=abc');
  });
});
