// The JWKS side on its own: which keys are usable, discovery's issuer check, local files, the
// config rules. Real HTTP servers and files; no gRPC here.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createJwtComponent } from '../../src/credentials/jwt/index.ts';
import { KeySet } from '../../src/credentials/jwt/key-set.ts';
import { configSchema, type JwtIssuerConfig } from '../../src/policy/schema.ts';
import { makeKey, nowSeconds, signRaw, startJwksServer } from './helpers.ts';

const closers: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of closers) await c();
});

function issuerConfig(over: Record<string, unknown>): JwtIssuerConfig {
  const parsed = configSchema.parse({
    credentials: { jwt: [{ audiences: ['https://api.example.com'], allow_http: true, ...over }] },
  });
  return parsed.credentials.jwt![0];
}

function component(cfg: JwtIssuerConfig, dir = '/') {
  const logs: string[] = [];
  const c = createJwtComponent({
    issuers: [cfg],
    cache: configSchema.parse({}).credentials.jwt_cache,
    resolvePath: (p) => join(dir, p),
    log: pino({ level: 'debug' }, { write: (l: string) => void logs.push(l) }),
    registry: new Registry(),
  });
  closers.push(() => c.close());
  return { c, logs };
}

describe('one key, one algorithm (RFC 8725 §3.1)', () => {
  it("a key without alg verifies only the first of the issuer's algorithms that fits its type", async () => {
    const rsa = await makeKey('rsa', 'RS256'); // publicJwk has no alg
    const both = await KeySet.fromJwks({ keys: [rsa.publicJwk] }, new Set(['PS256', 'RS256', 'RS384', 'ES256']));
    expect(['PS256', 'RS256', 'RS384'].map((a) => both.lookup('rsa', a).status)).toEqual(['found', 'no_alg', 'no_alg']);
    // The order of `algorithms` decides, not the order of the library's list.
    const other = await KeySet.fromJwks({ keys: [rsa.publicJwk] }, new Set(['ES256', 'RS384', 'PS256']));
    expect(['RS384', 'PS256'].map((a) => other.lookup('rsa', a).status)).toEqual(['found', 'no_alg']);
    expect(other.size).toBe(1);
    // Without a kid too: exactly one key object, for one algorithm.
    const { kid: _kid, ...noKid } = rsa.publicJwk;
    const anonymous = await KeySet.fromJwks({ keys: [noKid] }, new Set(['PS256', 'RS256']));
    expect([anonymous.lookup(undefined, 'PS256').status, anonymous.lookup(undefined, 'RS256').status]).toEqual([
      'found',
      'no_alg',
    ]);
    // A key with alg verifies that algorithm only, wherever it stands in the list.
    const set = await KeySet.fromJwks({ keys: [{ ...rsa.publicJwk, alg: 'RS256' }] }, new Set(['PS256', 'RS256']));
    expect([set.lookup('rsa', 'RS256').status, set.lookup('rsa', 'PS256').status]).toEqual(['found', 'no_alg']);
  });
});

describe('which published keys are usable', () => {
  it('skips symmetric, encryption, private, small RSA and ill-fitting keys, and keeps the rest', async () => {
    const rsa = await makeKey('rsa', 'RS256');
    const ec = await makeKey('ec', 'ES256');
    const small = { ...(await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)), kid: 'small' };
    const priv = {
      ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)),
      kid: 'private',
    };
    const p384 = { ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)), kid: 'p384' };
    const doc = {
      keys: [
        rsa.publicJwk,
        ec.publicJwk,
        { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac', alg: 'HS256' },
        { ...rsa.publicJwk, kid: 'enc', use: 'enc' },
        { ...rsa.publicJwk, kid: 'ops', key_ops: ['encrypt'] },
        { ...rsa.publicJwk, kid: 'rs512', alg: 'RS512' },
        small,
        priv,
        p384,
        'not a key',
      ],
    };
    const set = await KeySet.fromJwks(doc, new Set(['RS256', 'ES256']));
    expect(set.kids.sort()).toEqual(['ec', 'rsa']);
    expect(set.lookup('rsa', 'RS256').status).toBe('found');
    expect(set.lookup('rsa', 'ES256').status).toBe('no_alg');
    expect(set.lookup('ec', 'ES256').status).toBe('found');
    expect(set.lookup('hmac', 'HS256').status).toBe('unknown_kid');
    const why = Object.fromEntries(set.skipped.map((s) => [s.kid ?? '-', s.why]));
    expect(why.hmac).toMatch(/symmetric/);
    expect(why.enc).toMatch(/use/);
    expect(why.ops).toMatch(/key_ops/);
    expect(why.rs512).toMatch(/no allowed algorithm/);
    expect(why.small).toMatch(/1024 bits/);
    expect(why.private).toMatch(/private/);
    expect(why.p384).toMatch(/no allowed algorithm/);
  });

  it('a token without kid is verified only when exactly one key fits its alg', async () => {
    const a = await makeKey('a', 'RS256');
    const one = await KeySet.fromJwks({ keys: [a.publicJwk] }, new Set(['RS256']));
    expect(one.lookup(undefined, 'RS256').status).toBe('found');
    const b = await makeKey('b', 'RS256');
    const two = await KeySet.fromJwks({ keys: [a.publicJwk, b.publicJwk] }, new Set(['RS256']));
    expect(two.lookup(undefined, 'RS256').status).toBe('ambiguous');
  });

  it('keeps the identity of unchanged keys across refreshes (so cached tokens stay valid)', async () => {
    const a = await makeKey('a', 'RS256');
    const b = await makeKey('b', 'RS256');
    const first = await KeySet.fromJwks({ keys: [a.publicJwk] }, new Set(['RS256']));
    const second = await KeySet.fromJwks({ keys: [b.publicJwk, a.publicJwk] }, new Set(['RS256']), first);
    const ka = first.lookup('a', 'RS256');
    const kb = second.lookup('a', 'RS256');
    expect(ka.status === 'found' && kb.status === 'found' && ka.key === kb.key).toBe(true);
  });
});

describe('discovery', () => {
  async function discoveryServer(doc: (base: string) => unknown) {
    let base = '';
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc(base)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    return base;
  }

  it('refuses a discovery document whose issuer differs from the configured one', async () => {
    const jwks = await startJwksServer([(await makeKey('k', 'RS256')).publicJwk]);
    closers.push(() => jwks.close());
    const base = await discoveryServer(() => ({ issuer: 'https://someone-else.example.com', jwks_uri: jwks.url }));
    const { c, logs } = component(issuerConfig({ issuer: base, discovery: true }));
    await c.start();
    expect(c.readiness[0].ready()).toBe(false);
    expect(c.readiness[0].detail()).toContain('"issuer" is "https://someone-else.example.com"');
    expect(jwks.hits).toBe(0);
    expect(logs.some((l) => l.includes('JWKS could not be loaded'))).toBe(true);
  });

  it('accepts a matching document and uses its jwks_uri', async () => {
    const key = await makeKey('k', 'RS256');
    const jwks = await startJwksServer([key.publicJwk]);
    closers.push(() => jwks.close());
    const base = await discoveryServer((b) => ({ issuer: b, jwks_uri: jwks.url }));
    const { c } = component(issuerConfig({ issuer: base, discovery: true }));
    await c.start();
    expect(c.readiness[0].ready()).toBe(true);
    const now = nowSeconds();
    const token = signRaw(
      { alg: 'RS256', typ: 'at+jwt', kid: 'k' },
      { iss: base, aud: 'https://api.example.com', sub: 's', client_id: 'c', jti: 'j-1', exp: now + 60, iat: now },
      key.privateKey,
      'RS256',
    );
    await expect(c.verifier.verify(token)).resolves.toMatchObject({
      method: 'jwt',
      subject: 's',
      issuer: base,
      scopes: [],
    });
  });
});

describe('jwks_file', () => {
  it('loads a local JWKS relative to the config folder, and re-reads it on an unknown kid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwks-'));
    const k1 = await makeKey('file-1', 'ES256');
    const k2 = await makeKey('file-2', 'ES256');
    writeFileSync(join(dir, 'keys.json'), JSON.stringify({ keys: [k1.publicJwk] }));
    const cfg = issuerConfig({
      issuer: 'https://file.example',
      jwks_file: 'keys.json',
      algorithms: ['ES256'],
      jwks_cooldown_seconds: 0,
    });
    const { c } = component(cfg, dir);
    await c.start();
    expect(c.readiness[0].ready()).toBe(true);
    const now = nowSeconds();
    const claims = {
      iss: 'https://file.example',
      aud: 'https://api.example.com',
      sub: 's',
      client_id: 'c',
      jti: 'j-1',
      exp: now + 60,
      iat: now,
      scope: 'a b',
    };
    await expect(
      c.verifier.verify(signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'file-1' }, claims, k1.privateKey, 'ES256')),
    ).resolves.toMatchObject({ scopes: ['a', 'b'] });
    writeFileSync(join(dir, 'keys.json'), JSON.stringify({ keys: [k1.publicJwk, k2.publicJwk] }));
    await expect(
      c.verifier.verify(signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'file-2' }, claims, k2.privateKey, 'ES256')),
    ).resolves.toMatchObject({ issuer: 'https://file.example' });
  });

  it('a missing file keeps the issuer not ready, with the path in the reason', async () => {
    const { c } = component(
      issuerConfig({ issuer: 'https://file.example', jwks_file: 'nope.json' }),
      '/nonexistent-dir',
    );
    await c.start();
    expect(c.readiness[0].detail()).toContain('/nonexistent-dir/nope.json');
    expect(c.readiness[0].detail()).toContain('ENOENT');
  });
});

describe('config rules', () => {
  const parse = (jwt: unknown[]) => configSchema.safeParse({ credentials: { jwt } });
  const base = { issuer: 'https://idp.example.com', audiences: ['api'] };

  it('needs exactly one key source, https unless allow_http, unique issuers', () => {
    expect(parse([{ ...base }]).success).toBe(false);
    expect(parse([{ ...base, jwks_uri: 'https://idp.example.com/jwks', discovery: true }]).success).toBe(false);
    expect(parse([{ ...base, jwks_uri: 'https://idp.example.com/jwks' }]).success).toBe(true);
    const http = parse([{ ...base, jwks_uri: 'http://idp.example.com/jwks' }]);
    expect(http.success).toBe(false);
    expect(JSON.stringify(http.error?.issues)).toContain('allow_http');
    expect(parse([{ ...base, jwks_uri: 'http://idp.example.com/jwks', allow_http: true }]).success).toBe(true);
    expect(parse([{ ...base, issuer: 'http://idp.example.com', discovery: true }]).success).toBe(false);
    expect(parse([{ ...base, issuer: 'not a url', discovery: true }]).success).toBe(false);
    const dup = parse([
      { ...base, jwks_file: 'a.json' },
      { ...base, jwks_file: 'b.json' },
    ]);
    expect(dup.success).toBe(false);
    expect(JSON.stringify(dup.error?.issues)).toContain('duplicate issuer');
  });

  it('never lets an algorithm list include none or HMAC, and bounds the Check wait under 200 ms', () => {
    expect(parse([{ ...base, jwks_file: 'a.json', algorithms: ['HS256'] }]).success).toBe(false);
    expect(parse([{ ...base, jwks_file: 'a.json', algorithms: ['none'] }]).success).toBe(false);
    expect(parse([{ ...base, jwks_file: 'a.json', unknown_kid_wait_ms: 500 }]).success).toBe(false);
  });
});
