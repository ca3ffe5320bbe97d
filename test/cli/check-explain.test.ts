// `portcullis check` on policy routes: the would-be decision of a shadow route, and `--explain`
// (the route chosen and why, each condition with its result, the claims read). Config errors of
// conditions come out of `config check` with their paths.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeKey, nowSeconds, signRaw, type TestKey } from '../jwt/helpers.ts';
import { runCli } from '../support/cli.ts';
import { tempDir } from '../support/service.ts';

const ISS = 'https://idp.explain.test';
let config: string;
let key: TestKey;

beforeAll(async () => {
  key = await makeKey('ex-1', 'ES256');
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  config = join(dir, 'portcullis.yaml');
  writeFileSync(
    config,
    `
realm: api.example.com
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: [api], jwks_file: jwks.json, algorithms: [ES256] }
routes:
  - { name: health, public: true, match: { path: /healthz } }
  - name: tenant-orders
    match: { methods: [GET, DELETE], path_template: "/v1/tenants/{tenant}/orders/{id}" }
    auth: [jwt]
    when:
      - { name: own-tenant, expr: "request.params.tenant == identity.claims.tenant" }
      - "request.method == 'GET' || 'admin' in identity.claims.roles"
  - name: beta
    mode: shadow
    match: { path_prefix: /v1/beta }
    auth: [jwt]
    when: [{ name: beta-tester, expr: "has(identity.claims.beta) && identity.claims.beta == true" }]
`,
  );
});

function token(claims: Record<string, unknown>): string {
  const now = nowSeconds();
  return signRaw(
    { alg: 'ES256', typ: 'at+jwt', kid: 'ex-1' },
    { iss: ISS, aud: 'api', sub: 'alice', client_id: 'web', iat: now, exp: now + 300, jti: randomUUID(), ...claims },
    key.privateKey,
    'ES256',
  );
}

interface CheckOutput {
  reason: string;
  explain: { conditions: Array<{ result: unknown }>; claims_read: Record<string, unknown> };
  [k: string]: unknown;
}

const check = (path: string, t: string, ...more: string[]) =>
  runCli(['check', '-c', config, '--path', path, '-H', `authorization: Bearer ${t}`, ...more]);

describe('portcullis check on policy routes', () => {
  it('--explain: the route and why, each condition with its result, the claims read', async () => {
    const r = await check(
      '/v1/tenants/globex/orders/7',
      token({ tenant: 'acme', roles: ['viewer'], secret_claim: 'not read' }),
      '-X',
      'DELETE',
      '--explain',
    );
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as CheckOutput;
    expect(out).toMatchObject({ allowed: false, status: 403, reason: 'condition_failed', condition: 'own-tenant' });
    expect(out.explain).toEqual({
      route: 'tenant-orders',
      why: 'the first route that matches: methods [GET, DELETE], path_template /v1/tenants/{tenant}/orders/{id}',
      skipped: [{ route: 'health', because: 'path is not /healthz' }],
      params: { tenant: 'globex', id: '7' },
      conditions: [
        {
          where: 'routes[1].when[0]',
          name: 'own-tenant',
          expr: 'request.params.tenant == identity.claims.tenant',
          result: false,
        },
        {
          where: 'routes[1].when[1]',
          expr: "request.method == 'GET' || 'admin' in identity.claims.roles",
          result: false,
        },
      ],
      claims_read: { tenant: 'acme', roles: ['viewer'] },
    });
  });

  it('--explain shows an evaluation error with its CEL code', async () => {
    const r = await check('/v1/tenants/acme/orders/7', token({}), '--explain');
    const out = JSON.parse(r.stdout) as CheckOutput;
    expect(out.reason).toBe('condition_error');
    expect(out.explain.conditions[0].result).toMatch(/^error: no_such_key at /);
    expect(out.explain.claims_read).toEqual({});
  });

  it('a shadow route: allowed (exit 0), with the would-be decision', async () => {
    const r = await check('/v1/beta/x', token({ tenant: 'acme' }), '--explain');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as CheckOutput;
    expect(out).toMatchObject({
      allowed: true,
      reason: 'shadow',
      headers_set: {},
      shadow: { would_status: 403, would_reason: 'condition_failed', condition: 'beta-tester' },
    });
    expect(out.explain.conditions).toEqual([
      { where: 'routes[2].when[0]', name: 'beta-tester', expr: expect.any(String), result: false },
    ]);
    const ok = JSON.parse((await check('/v1/beta/x', token({ beta: true }))).stdout) as CheckOutput;
    expect(ok).toMatchObject({
      allowed: true,
      reason: 'allowed',
      shadow: { would_status: 200, would_reason: 'allowed' },
    });
  });

  it('config check names routes[i].when[j] with the CEL message', async () => {
    const bad = join(tempDir(), 'bad.yaml');
    writeFileSync(
      bad,
      `credentials: { jwt: [{ issuer: x, audiences: [a], jwks_file: j.json }] }
routes:
  - { name: a, match: { path: /a }, auth: [jwt], when: ["true", "request.methd == 'GET'"] }
`,
    );
    const r = await runCli(['config', 'check', bad, '--no-files']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/routes\[0\]\.when\[1\]: .*methd/);
  });
});
