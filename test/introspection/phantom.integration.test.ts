// Phantom tokens end to end: an opaque token from the real oidc-provider goes in, the upstream
// gets a JWT signed by Portcullis, verified with jose against Portcullis's own JWKS endpoint on
// the ops listener; key rotation by config reload keeps old and new phantom tokens verifiable.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';

const ISS = 'https://portcullis.test';
const AUD = 'orders-service';
let idp: TestIdp;

function ecPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}

const config = (phantom: string) => `
credentials:
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    timeout_ms: 1000
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    phantom_token:
      enabled: true
      issuer: ${ISS}
      audience: ${AUD}
      ttl_seconds: 30
${phantom}
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:read] }
`;

const withKeys = (keys: Array<{ kid: string; file: string; publishOnly?: boolean }>) =>
  config(
    [
      '      keys:',
      ...keys.map(
        (k) => `        - { kid: ${k.kid}, private_key_file: ${k.file}${k.publishOnly ? ', publish_only: true' : ''} }`,
      ),
    ].join('\n'),
  );

async function phantomFor(svc: TestService, token: string): Promise<string> {
  const out = await svc.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
  expect(out.status).toBe(200);
  const auth = out.upstreamHeaders.authorization;
  expect(auth).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  expect(auth).not.toContain(token);
  return auth.slice('Bearer '.length);
}

beforeAll(async () => {
  idp = await startIdp({ opaqueTtl: 600 });
});
afterAll(async () => {
  await idp?.close();
});

describe('phantom tokens', () => {
  let svc: TestService;
  afterAll(async () => {
    await svc?.stop();
  });

  it('the upstream gets a JWT (ES256, configured kid) that verifies against /.well-known/jwks.json with the identity, capped exp, iss and aud', async () => {
    svc = await startService(withKeys([{ kid: 'k1', file: 'k1.pem' }]), { files: { 'k1.pem': ecPem() } });
    const scope = 'orders:read reports:read';
    const token = await idp.opaqueAccessToken(scope);
    const original = await idp.introspect(token);
    const phantom = await phantomFor(svc, token);

    const jwks = createRemoteJWKSet(new URL(`${svc.httpBase}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(phantom, jwks, {
      issuer: ISS,
      audience: AUD,
      algorithms: ['ES256'],
      typ: 'at+jwt',
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: 'test-client', sub: 'test-client', scope, auth_method: 'oauth2' });
    const now = Math.floor(Date.now() / 1000);
    // exp = min(original exp (600 s away), now + ttl_seconds (30)).
    expect(payload.exp).toBeLessThanOrEqual(now + 30);
    expect(payload.exp).toBeGreaterThan(now + 25);
    expect(payload.exp).toBeLessThan(original.exp as number);

    // The JWKS: public keys only, a cacheable JSON document.
    const res = await fetch(`${svc.httpBase}/.well-known/jwks.json`);
    expect(res.headers.get('content-type')).toBe('application/jwk-set+json');
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: 'k1', alg: 'ES256', use: 'sig' });
    expect(body.keys[0].d).toBeUndefined();

    // Repeat requests reuse the phantom token of the cached identity (no signature per request).
    expect(await phantomFor(svc, token)).toBe(phantom);
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toContain('portcullis_phantom_tokens_issued_total{credential="oauth2"} 1');
  });

  it('the phantom exp never outlives the original token', async () => {
    const shortIdp = await startIdp({ opaqueTtl: 5 });
    const s = await startService(
      withKeys([{ kid: 'k1', file: 'k1.pem' }])
        .replace(idp.introspectionEndpoint, shortIdp.introspectionEndpoint)
        .replace(`issuer: ${idp.issuer}`, `issuer: ${shortIdp.issuer}`),
      { files: { 'k1.pem': ecPem() } },
    );
    try {
      const token = await shortIdp.opaqueAccessToken('orders:read');
      const original = await shortIdp.introspect(token);
      const phantom = await phantomFor(s, token);
      const { payload } = await jwtVerify(phantom, createRemoteJWKSet(new URL(`${s.httpBase}/.well-known/jwks.json`)), {
        issuer: ISS,
        audience: AUD,
      });
      expect(payload.exp).toBe(original.exp);
    } finally {
      await s.stop();
      await shortIdp.close();
    }
  });

  it('key rotation by config reload: the new key signs, old and new phantom tokens both verify', async () => {
    const before = await phantomFor(svc, await idp.opaqueAccessToken('orders:read'));
    expect(decodeProtectedHeader(before).kid).toBe('k1');
    writeFileSync(join(svc.dir, 'k2.pem'), ecPem());
    writeFileSync(
      svc.configFile,
      withKeys([
        { kid: 'k2', file: 'k2.pem' },
        { kid: 'k1', file: 'k1.pem' },
      ]),
    );
    await waitFor(async () => {
      const r = (await (await fetch(`${svc.httpBase}/.well-known/jwks.json`)).json()) as {
        keys: Array<{ kid: string }>;
      };
      return r.keys.map((k) => k.kid).join() === 'k2,k1';
    }, 10_000);
    const after = await phantomFor(svc, await idp.opaqueAccessToken('orders:read'));
    expect(decodeProtectedHeader(after).kid).toBe('k2');

    // An upstream fetching the JWKS once, after the reload, verifies both.
    const jwks = createLocalJWKSet((await (await fetch(`${svc.httpBase}/.well-known/jwks.json`)).json()) as never);
    for (const t of [before, after])
      await expect(jwtVerify(t, jwks, { issuer: ISS, audience: AUD })).resolves.toBeTruthy();
  });

  it('a staged key (publish_only) is published before it signs', async () => {
    writeFileSync(join(svc.dir, 'k3.pem'), ecPem());
    writeFileSync(
      svc.configFile,
      withKeys([
        { kid: 'k3', file: 'k3.pem', publishOnly: true },
        { kid: 'k2', file: 'k2.pem' },
        { kid: 'k1', file: 'k1.pem' },
      ]),
    );
    await waitFor(async () => {
      const r = (await (await fetch(`${svc.httpBase}/.well-known/jwks.json`)).json()) as {
        keys: Array<{ kid: string }>;
      };
      return r.keys.map((k) => k.kid).join() === 'k3,k2,k1';
    }, 10_000);
    const t = await phantomFor(svc, await idp.opaqueAccessToken('orders:read'));
    expect(decodeProtectedHeader(t).kid).toBe('k2');
  });

  it('a bad key file is rejected whole on reload; the running keys keep signing', async () => {
    writeFileSync(join(svc.dir, 'bad.pem'), '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n');
    writeFileSync(
      svc.configFile,
      withKeys([
        { kid: 'bad', file: 'bad.pem' },
        { kid: 'k2', file: 'k2.pem' },
      ]),
    );
    await waitFor(
      () => svc.logs.some((l) => l.includes('config reload rejected') && l.includes('kid \\"bad\\"')),
      10_000,
    );
    const t = await phantomFor(svc, await idp.opaqueAccessToken('orders:read'));
    expect(decodeProtectedHeader(t).kid).toBe('k2');
  });

  it('API keys get a phantom token only with for_api_keys: true', async () => {
    const dir = tempDir();
    const keyStore = FileKeyStore.init(join(dir, 'keys.yaml'));
    const { key, record } = await createKey(keyStore, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'] });
    const yaml = (forKeys: boolean) =>
      config(`      for_api_keys: ${forKeys}`)
        .replace(
          'credentials:\n',
          'credentials:\n  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }\n',
        )
        .replace('auth: [oauth2]', 'auth: [oauth2, api-key]');
    const s = await startService(yaml(false), { dir });
    try {
      const off = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { 'x-api-key': key } });
      expect(off.status).toBe(200);
      expect(off.upstreamHeaders.authorization).toBeUndefined();
      expect(off.upstreamHeaders['x-api-key']).toBeUndefined();

      writeFileSync(s.configFile, yaml(true));
      await waitFor(() => s.logs.some((l) => l.includes('config reloaded')), 10_000);
      const on = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { 'x-api-key': key } });
      expect(on.status).toBe(200);
      expect(on.upstreamHeaders['x-api-key']).toBeUndefined();
      const jwt = on.upstreamHeaders.authorization.slice('Bearer '.length);
      const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(`${s.httpBase}/.well-known/jwks.json`)), {
        issuer: ISS,
        audience: AUD,
      });
      expect(payload).toMatchObject({ client_id: 'partner-a', scope: 'orders:read', auth_method: 'api-key' });
      expect(JSON.stringify(payload)).not.toContain(key);

      // One identity per key record: the next Check reuses the token. A changed record (here the
      // file edited, as `portcullis keys` would) is a new identity, and gets a new token.
      const again = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { 'x-api-key': key } });
      expect(again.upstreamHeaders.authorization).toBe(on.upstreamHeaders.authorization);
      await keyStore.put({ ...record, scopes: ['orders:read', 'orders:write'] });
      await waitFor(async () => {
        const r = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { 'x-api-key': key } });
        return (
          r.status === 200 &&
          decodeJwt(r.upstreamHeaders.authorization.slice('Bearer '.length)).scope === 'orders:read orders:write'
        );
      }, 10_000);
    } finally {
      await s.stop();
    }
  });

  it('without configured keys: a generated key, a logged warning, and tokens that verify', async () => {
    const s = await startService(config(''));
    try {
      expect(s.logs.join('')).toContain(
        'phantom_token.keys is not set: signing phantom tokens with a key generated at start',
      );
      const t = await phantomFor(s, await idp.opaqueAccessToken('orders:read'));
      expect(decodeProtectedHeader(t).kid).toMatch(/^generated-/);
      await jwtVerify(t, createRemoteJWKSet(new URL(`${s.httpBase}/.well-known/jwks.json`)), {
        issuer: ISS,
        audience: AUD,
      });
    } finally {
      await s.stop();
    }
  });
});
