// The CLI as a user runs it: keys lifecycle, check, config check; and a running server that sees
// CLI changes to the file key store within 5 seconds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';

const CONFIG = `
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key] }
`;

let dir: string;
let config: string;
let svc: TestService;

beforeAll(async () => {
  dir = tempDir();
  svc = await startService(CONFIG, { dir, files: { 'keys.yaml': 'keys: []\n' } });
  config = svc.configFile;
});
afterAll(async () => svc?.stop());

async function createKey(...extra: string[]) {
  const r = await runCli(['keys', 'create', '--config', config, '--client-id', 'partner-a', '--json', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as {
    id: string;
    key: string;
    client_id: string;
    scopes: string[];
    expires_at?: string;
    routes?: string[];
  };
}

describe('portcullis keys', () => {
  it('create prints the key once; the store keeps only its hash; the running server accepts it within 5 s', async () => {
    const k = await createKey('--scopes', 'orders:read');
    expect(k.key).toMatch(/^pcl_[A-Za-z0-9]{38}$/);
    expect(k.client_id).toBe('partner-a');
    const stored = readFileSync(join(dir, 'keys.yaml'), 'utf8');
    expect(stored).not.toContain(k.key);
    expect(stored).toContain(k.id);
    await waitFor(async () => (await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': k.key } })).allowed, 5000);

    const list = await runCli(['keys', 'list', '--config', config, '--json']);
    const listed = JSON.parse(list.stdout) as Array<{ id: string; state: string; hash?: string }>;
    expect(listed.find((r) => r.id === k.id)).toMatchObject({ state: 'active' });
    expect(list.stdout).not.toContain(k.key);

    const revoke = await runCli(['keys', 'revoke', k.id, '--config', config]);
    expect(revoke.code).toBe(0);
    await waitFor(
      async () => (await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': k.key } })).status === 401,
      5000,
    );
  });

  it('rotate: a new key for the same client; the old one keeps working until revoked or the grace ends', async () => {
    const old = await createKey('--scopes', 'orders:read', '--routes', 'orders');
    const r = await runCli(['keys', 'rotate', old.id, '--config', config, '--grace', '1h', '--json']);
    expect(r.code).toBe(0);
    const rotated = JSON.parse(r.stdout);
    expect(rotated.key).not.toBe(old.key);
    expect(rotated.client_id).toBe('partner-a');
    expect(rotated.scopes).toEqual(['orders:read']);
    expect(rotated.routes).toEqual(['orders']);
    expect(rotated.rotated_from).toBe(old.id);
    expect(Date.parse(rotated.old.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    await waitFor(
      async () => (await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': rotated.key } })).allowed,
      5000,
    );
    expect((await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': old.key } })).allowed).toBe(true);
    // The rotated key keeps the route restriction.
    expect((await svc.envoy({ path: '/v1/reports', headers: { 'x-api-key': rotated.key } })).status).toBe(403);

    // Two active keys per client is the limit: a third needs a revoke first.
    const third = await runCli(['keys', 'create', '--config', config, '--client-id', 'partner-a']);
    expect(third.code).not.toBe(0);
    expect(third.stderr).toMatch(/already has 2 active keys/);
    await runCli(['keys', 'revoke', old.id, '--config', config]);
    await runCli(['keys', 'revoke', rotated.id, '--config', config]);
  });

  it('expiry and source CIDRs are enforced', async () => {
    const k = await createKey('--cidrs', '192.168.0.0/16', '--expires-in', '30d', '--scopes', 'orders:read');
    expect(Date.parse(k.expires_at!) - Date.now()).toBeGreaterThan(29 * 86400_000);
    await waitFor(
      async () =>
        (await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': k.key }, sourceIp: '192.168.1.1' })).allowed,
      5000,
    );
    const out = await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': k.key }, sourceIp: '10.0.0.1' });
    expect(out.status).toBe(403);
    await runCli(['keys', 'revoke', k.id, '--config', config]);
  });

  it('bad input is a clear error, not a stack trace', async () => {
    const r1 = await runCli(['keys', 'create', '--config', config, '--client-id', 'x', '--cidrs', '10.0.0.0/99']);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('is not a CIDR');
    const r2 = await runCli(['keys', 'revoke', 'key_nope', '--config', config]);
    expect(r2.stderr).toContain('no key with id "key_nope"');
    const r3 = await runCli(['keys', 'create', '--config', config, '--client-id', 'x', '--expires-in', 'soon']);
    expect(r3.stderr).toContain('is not a duration');
    for (const r of [r1, r2, r3]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('portcullis keys with a hand-edited, invalid record', () => {
  it('list shows it as invalid with what is wrong; revoke says so instead of "no such key"; the file keeps it as written', async () => {
    const own = tempDir();
    writeFileSync(join(own, 'portcullis.yaml'), CONFIG);
    const hash = 'b'.repeat(64);
    writeFileSync(
      join(own, 'keys.yaml'),
      `keys:\n  - { id: key_hand, hash: ${hash}, client_id: acme, routes: orders-internal-admin, status: active }\n`,
    );
    const cfg = join(own, 'portcullis.yaml');
    const list = await runCli(['keys', 'list', '--config', cfg]);
    expect(list.code).toBe(0);
    expect(list.stdout).toBe(
      'key_hand  invalid (locked out): routes: Invalid input: expected array, received string\n',
    );
    const json = JSON.parse((await runCli(['keys', 'list', '--config', cfg, '--json'])).stdout);
    expect(json).toEqual([
      {
        id: 'key_hand',
        position: 'keys[0]',
        state: 'invalid',
        problems: ['routes: Invalid input: expected array, received string'],
      },
    ]);
    const revoke = await runCli(['keys', 'revoke', 'key_hand', '--config', cfg]);
    expect(revoke.code).not.toBe(0);
    expect(revoke.stderr).toContain('key "key_hand" has an invalid record and is locked out (routes: ');
    // Creating another key rewrites the file; the hand-written record stays as it was.
    expect((await runCli(['keys', 'create', '--config', cfg, '--client-id', 'other'])).code).toBe(0);
    expect((await runCli(['keys', 'list', '--config', cfg])).stdout).toContain('key_hand  invalid (locked out)');
  });
});

describe('portcullis check', () => {
  it('prints the decision as JSON; exit 0 allowed, 1 denied', async () => {
    const k = await createKey('--scopes', 'orders:read');
    const ok = await runCli([
      'check',
      '--config',
      config,
      '--method',
      'GET',
      '--path',
      '/v1/orders/1',
      '-H',
      `x-api-key: ${k.key}`,
      '-H',
      'X-User-Id: admin',
    ]);
    expect(ok.code).toBe(0);
    const d = JSON.parse(ok.stdout);
    expect(d).toMatchObject({
      allowed: true,
      status: 200,
      route: 'orders',
      headers_set: { 'x-client-id': 'partner-a' },
    });
    // The key names no subject: x-user-id is not set, and the client's is removed.
    expect(d.headers_removed).toEqual(['x-user-id', 'x-api-key']);
    expect(d.headers_set['x-user-id']).toBeUndefined();

    const denied = await runCli(['check', '--config', config, '--path', '/v1/orders']);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout)).toMatchObject({
      allowed: false,
      status: 401,
      error: 'missing_credentials',
      response_headers: { 'www-authenticate': 'Bearer realm="portcullis"' },
    });
    await runCli(['keys', 'revoke', k.id, '--config', config]);
  });
});

describe('portcullis config check', () => {
  it('valid file: exit 0', async () => {
    const r = await runCli(['config', 'check', 'examples/portcullis.yaml']);
    expect(r.code).toBe(0);
  });

  it('invalid file: non-zero, every error with its path', async () => {
    const f = join(tempDir(), 'bad.yaml');
    writeFileSync(
      f,
      `
server: { grpc: { address: "nope" } }
routes:
  - { name: a, match: { path_prefix: v1 }, auth: [jwt] }
  - { name: a, public: true, scopes: [x] }
credentials: { introspection: { endpoint: "http://idp/introspect", client_id: gw, client_secret: "\${env:PORTCULLIS_TEST_UNSET}" } }
`,
    );
    const r = await runCli(['config', 'check', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('environment variable PORTCULLIS_TEST_UNSET is not set');
    const r2 = await runCli(['config', 'check', f], { PORTCULLIS_TEST_UNSET: 'x' });
    expect(r2.code).toBe(2);
    for (const p of [
      'server.grpc.address',
      'routes[0].match.path_prefix',
      'routes[0].auth[0]',
      'routes[1].name',
      'routes[1]:',
    ])
      expect(r2.stderr).toContain(p);
  });
});

describe('keys create refuses grants that can never be used', () => {
  it('--routes must name routes of the config that take API keys; scopes must be RFC 6749 scope-tokens', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'keys.yaml'), 'keys: []\n');
    const cfg = join(dir, 'portcullis.yaml');
    writeFileSync(
      cfg,
      `${CONFIG}  - { name: health, match: { path: /health }, public: true }\n  - { name: tokens-only, match: { path_prefix: /v2 }, auth: [oauth2] }\n`.replace(
        'credentials:\n',
        'credentials:\n  introspection: { endpoint: "https://idp.example/introspect", client_id: gw, client_secret: s, audiences: [api] }\n',
      ),
    );
    for (const [routes, says] of [
      ['no-such-route', '"no-such-route" is not a route of this config'],
      ['orders,ordrs', '"ordrs" is not a route of this config'],
      ['health', '"health" is public'],
      ['tokens-only', '"tokens-only" does not accept api-key'],
    ]) {
      const r = await runCli(['keys', 'create', '-c', cfg, '--client-id', 'partner-a', '--routes', routes]);
      expect({ routes, code: r.code }).toEqual({ routes, code: 2 });
      expect(r.stderr).toContain(says);
      expect(r.stderr).toContain('routes that take API keys: orders, reports');
    }
    for (const scope of ['orders read', 'orders"read', 'ördérs', 'a\\b']) {
      const r = await runCli(['keys', 'create', '-c', cfg, '--client-id', 'partner-a', '--scopes', scope]);
      expect({ scope, code: r.code }).toEqual({ scope, code: 2 });
      expect(r.stderr).toContain('has characters RFC 6749 does not allow');
    }
    expect(readFileSync(join(dir, 'keys.yaml'), 'utf8')).toBe('keys: []\n'); // nothing was stored
    const ok = await runCli(['keys', 'create', '-c', cfg, '--client-id', 'partner-a', '--routes', 'orders,reports']);
    expect(ok.code).toBe(0);
  });

  it("keys list shows each key's routes and CIDRs without --json", async () => {
    const k = await createKey('--routes', 'orders', '--cidrs', '10.0.0.0/8,192.168.0.0/16');
    const all = await createKey();
    const r = await runCli(['keys', 'list', '--config', config]);
    const line = r.stdout.split('\n').find((l) => l.startsWith(k.id))!;
    expect(line).toContain('routes=orders');
    expect(line).toContain('cidrs=10.0.0.0/8,192.168.0.0/16');
    const open = r.stdout.split('\n').find((l) => l.startsWith(all.id))!;
    expect(open).toContain('routes=any');
    expect(open).toContain('cidrs=any');
    await runCli(['keys', 'revoke', k.id, '--config', config]);
    await runCli(['keys', 'revoke', all.id, '--config', config]);
  });

  it('keys create --subject --metadata: stored, listed, and the subject (only it) becomes x-user-id', async () => {
    const k = await createKey(
      '--client-id',
      'reports-app',
      '--scopes',
      'orders:read',
      '--subject',
      'svc-reports',
      '--metadata',
      'team=payments',
      '--metadata',
      'tier=gold',
    );
    const list = await runCli(['keys', 'list', '--config', config]);
    const line = list.stdout.split('\n').find((l) => l.startsWith(k.id))!;
    expect(line).toContain('subject=svc-reports');
    expect(line).toContain('metadata=team="payments",tier="gold"');
    const json = JSON.parse((await runCli(['keys', 'list', '--config', config, '--json'])).stdout) as Array<{
      id: string;
      subject?: string;
      metadata?: Record<string, string>;
    }>;
    expect(json.find((r) => r.id === k.id)).toMatchObject({
      subject: 'svc-reports',
      metadata: { team: 'payments', tier: 'gold' },
    });
    const call = () => svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': k.key, 'x-user-id': 'admin' } });
    await waitFor(async () => (await call()).allowed, 5000);
    const out = await call();
    expect(out.upstreamHeaders['x-user-id']).toBe('svc-reports');
    expect(out.upstreamHeaders['x-client-id']).toBe('reports-app');

    const bad = await runCli(['keys', 'create', '--config', config, '--client-id', 'x', '--metadata', 'team=a\u0007b']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/metadata\.team/);
    await runCli(['keys', 'revoke', k.id, '--config', config]);
  });
});
