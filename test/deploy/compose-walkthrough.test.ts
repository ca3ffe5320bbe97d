// The docker-compose curl walk-through of docs/deployment.md, without Docker: the same Portcullis
// config (deploy/compose/portcullis.yaml, host names pointed at local processes), the same dev
// identity provider script (deploy/compose/idp.mjs, a real oidc-provider), a real redis-server, and
// Envoy's part taken from envoy/envoy.yaml (header_mutation strip list, route table, per-route
// context extensions and disabled ext_authz) applied by test/support/envoy.ts.
// @module-tag redis-server
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, type TestService } from '../support/service.ts';
import { envoyRoutes, envoySelect, findHcm, REPO, type Json } from './support/envoy-config.ts';

/** The development API key whose hash is in deploy/compose/keys.yaml (published in the guide). */
const DEMO_API_KEY = 'pcl_nPrkXC0OUg5TBbKLAZIbm5Bn0zyqGXkB27Kgeq';

let idpProc: ChildProcess;
let issuer: string;
let redis: TestRedis;
let svc: TestService;

const envoyConfig = parse(readFileSync(`${REPO}envoy/envoy.yaml`, 'utf8'));
const routes = envoyRoutes(envoyConfig);
const stripped: string[] = findHcm(envoyConfig).http_filters[0].typed_config.mutations.request_mutations.map(
  (m: Json) => m.remove,
);

/** A request through Envoy as envoy/envoy.yaml configures it, then Portcullis, then the upstream. */
async function curl(method: string, path: string, headers: Record<string, string> = {}) {
  const kept = Object.fromEntries(Object.entries(headers).filter(([k]) => !stripped.includes(k.toLowerCase())));
  const route = envoySelect(routes, method, path.split('?')[0]);
  if (!route) throw new Error(`no Envoy route for ${method} ${path}: the catch-all is missing`);
  if (route.disabled)
    return {
      allowed: true,
      status: 200,
      upstreamHeaders: kept,
      clientHeaders: {} as Record<string, string>,
      body: undefined as string | undefined,
    };
  return svc.envoy({ method, path, headers: kept, contextExtensions: route.contextExtensions });
}

async function token(scope: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('demo-client:demo-client-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  const json = (await res.json()) as { access_token: string };
  expect(res.status).toBe(200);
  return json.access_token;
}

beforeAll(async () => {
  idpProc = spawn(process.execPath, [`${REPO}deploy/compose/idp.mjs`], {
    env: { ...process.env, IDP_PORT: '0', IDP_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  issuer = await new Promise<string>((resolve, reject) => {
    let out = '';
    idpProc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('dev identity provider listening'));
      if (line) resolve((JSON.parse(line) as { issuer: string }).issuer);
    });
    idpProc.once('exit', (code) => reject(new Error(`idp.mjs exited ${code}`)));
    setTimeout(() => reject(new Error('idp.mjs did not start')), 15_000);
  });
  redis = await startRedis();
  const config = readFileSync(`${REPO}deploy/compose/portcullis.yaml`, 'utf8')
    .replaceAll('http://idp:3000', issuer)
    .replace('redis://redis:6379', redis.url)
    .replaceAll('0.0.0.0:', '127.0.0.1:');
  expect(config).not.toMatch(/idp:3000|redis:6379/);
  svc = await startService(config, { files: { 'keys.yaml': readFileSync(`${REPO}deploy/compose/keys.yaml`, 'utf8') } });
  // Ready = JWKS fetched and Redis reachable (what docker compose waits for before starting Envoy).
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${svc.httpBase}/readyz`)).status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await fetch(`${svc.httpBase}/readyz`)).status).toBe(200);
});

afterAll(async () => {
  await svc?.stop();
  await redis?.stop();
  idpProc?.kill('SIGTERM');
});

describe('compose walk-through (docs/deployment.md)', () => {
  it('1. no credentials: 401 with a Bearer challenge', async () => {
    const r = await curl('GET', '/v1/orders');
    expect(r.status).toBe(401);
    expect(r.clientHeaders['www-authenticate']).toBe('Bearer realm="api.example.com"');
    expect(JSON.parse(r.body!)).toMatchObject({ error: 'missing_credentials' });
  });

  it('2. API key: 200, the upstream sees trusted identity headers and not the key', async () => {
    const r = await curl('GET', '/v1/orders', { 'x-api-key': DEMO_API_KEY });
    expect(r.status).toBe(200);
    expect(r.upstreamHeaders).toMatchObject({
      'x-client-id': 'partner-app',
      'x-auth-method': 'api-key',
      'x-scopes': 'orders:read',
    });
    expect(r.upstreamHeaders['x-api-key']).toBeUndefined();
  });

  it('3. JWT from the dev identity provider: 200 with its subject and client; the token is not forwarded', async () => {
    const r = await curl('GET', '/v1/orders/42', { authorization: `Bearer ${await token('orders:read')}` });
    expect(r.status).toBe(200);
    expect(r.upstreamHeaders).toMatchObject({
      'x-user-id': 'demo-client',
      'x-client-id': 'demo-client',
      'x-auth-method': 'jwt',
      'x-scopes': 'orders:read',
    });
    expect(r.upstreamHeaders.authorization).toBeUndefined();
  });

  it('4. a spoofed X-User-Id never reaches the upstream', async () => {
    const withKey = await curl('GET', '/v1/orders', {
      'x-api-key': DEMO_API_KEY,
      'X-User-Id': 'admin',
      'x-auth-method': 'root',
    });
    expect(withKey.status).toBe(200);
    expect(withKey.upstreamHeaders['x-user-id']).not.toBe('admin');
    expect(withKey.upstreamHeaders['x-auth-method']).toBe('api-key');
    const jwt = await curl('GET', '/v1/orders', {
      authorization: `Bearer ${await token('orders:read')}`,
      'x-user-id': 'admin',
    });
    expect(jwt.upstreamHeaders['x-user-id']).toBe('demo-client');
    // On a public route ext_authz is off; Envoy's header_mutation filter still removes it.
    const pub = await curl('GET', '/public/hello', { 'x-user-id': 'admin' });
    expect(pub.status).toBe(200);
    expect(pub.upstreamHeaders['x-user-id']).toBeUndefined();
  });

  it('5. a read-only token cannot write: 403 insufficient_scope', async () => {
    const r = await curl('POST', '/v1/orders', { authorization: `Bearer ${await token('orders:read')}` });
    expect(r.status).toBe(403);
    expect(r.clientHeaders['www-authenticate']).toBe(
      'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    );
  });

  it('6. a path no route names: 403 (the catch-all still asks Portcullis; default deny)', async () => {
    const r = await curl('GET', '/admin', { 'x-api-key': DEMO_API_KEY });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body!)).toMatchObject({ error: 'forbidden' });
  });
});
