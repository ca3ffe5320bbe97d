// DPoP (RFC 9449) as Envoy sees it: Envoy-shaped CheckRequests over gRPC with Envoy's protos against
// the running service, a JWT access token bound to the client's key (cnf.jkt), and proofs made by
// the `dpop` npm package (a real client) or crafted with jose for every rule: method, URI, token
// hash, key, age, replay, alg none / HS256, a private jwk, two DPoP headers, a bound token sent as
// Bearer. Every deny asserts the status, the reason, the body's error and the challenge, and that
// neither token nor proof reaches a log line.
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as dpop from 'dpop';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, nowSeconds, type TestKey } from '../jwt/helpers.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';
import { accessToken, ath, craftProof, outcome, proofKey, unsignedProof, type ProofKey } from './helpers.ts';

const ISS = 'https://idp.dpop.test';
const AUD = 'https://api.example.com';
const HTU = 'https://api.example.com/v1/orders/7';
const ALGS = 'algs="ES256 EdDSA Ed25519"';
const BEARER = 'Bearer realm="api.example.com"';
const dpopError = (error: string, description: string) =>
  `DPoP realm="api.example.com", error="${error}", error_description="${description}", ${ALGS}, ${BEARER}`;
const PROOF_INVALID = dpopError('invalid_dpop_proof', 'The DPoP proof is invalid');

let svc: TestService;
let nonceSvc: TestService;
let issuerKey: TestKey;
let issuer: { iss: string; aud: string; key: TestKey };
let client: ProofKey;
let bound: string;
const secrets: string[] = [];

const config = (extra = '') => `
realm: api.example.com
headers:
  set: { x-user-id: subject, x-auth-method: method }
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${AUD}"], jwks_file: jwks.json, algorithms: [ES256] }
  dpop: { max_age_seconds: 60, clock_skew_seconds: 5, algorithms: [ES256, EdDSA, Ed25519]${extra} }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [jwt] }
  - { name: strict, match: { path_prefix: /v1/strict }, auth: [jwt], sender_constraint: dpop }
`;

beforeAll(async () => {
  issuerKey = await makeKey('dpop-1', 'ES256');
  issuer = { iss: ISS, aud: AUD, key: issuerKey };
  client = await proofKey();
  bound = accessToken(issuer, { cnf: { jkt: client.jkt } });
  secrets.push(bound);
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [issuerKey.publicJwk] }));
  svc = await startService(config(), { dir });
  const dir2 = tempDir();
  writeFileSync(join(dir2, 'jwks.json'), JSON.stringify({ keys: [issuerKey.publicJwk] }));
  nonceSvc = await startService(config(', nonce: required, nonce_secret: "0123456789abcdef0123456789abcdef"'), {
    dir: dir2,
  });
});

afterAll(async () => {
  // Nothing secret in any log line: not the token, not a proof.
  for (const line of [...(svc?.logs ?? []), ...(nonceSvc?.logs ?? [])])
    for (const s of secrets) expect(line).not.toContain(s);
  await svc?.stop();
  await nonceSvc?.stop();
});

async function send(
  opts: {
    token?: string;
    scheme?: string;
    proof?: string | string[];
    method?: string;
    path?: string;
    host?: string;
    envoyScheme?: string;
  },
  on: TestService = svc,
) {
  const headers: Array<[string, string]> = [];
  if (opts.token !== undefined) headers.push(['authorization', `${opts.scheme ?? 'DPoP'} ${opts.token}`]);
  for (const p of typeof opts.proof === 'string' ? [opts.proof] : (opts.proof ?? [])) {
    secrets.push(p);
    headers.push(['DPoP', p]);
  }
  const out = await on.envoy({
    method: opts.method ?? 'GET',
    path: opts.path ?? '/v1/orders/7',
    host: opts.host,
    scheme: opts.envoyScheme,
    headers,
  });
  return outcome(out);
}

const proof = (over: Record<string, unknown> = {}, opts: Parameters<typeof craftProof>[2] = {}, key = client) =>
  craftProof(key, { htm: 'GET', htu: HTU, token: bound, ...over }, opts);

describe('a valid proof', () => {
  it('made by the dpop package: allowed, identity.bound dpop, the proof and the token stay here', async () => {
    const kp = await dpop.generateKeyPair('ES256');
    const { calculateJwkThumbprint, exportJWK } = await import('jose');
    const jkt = await calculateJwkThumbprint(await exportJWK(kp.publicKey));
    const token = accessToken(issuer, { cnf: { jkt } });
    secrets.push(token);
    const p = await dpop.generateProof(kp, 'https://api.example.com/v1/orders/7?page=2', 'GET', undefined, token);
    const r = await send({ token, proof: p, path: '/v1/orders/7?page=2' });
    expect(r.status).toBe(200);
    expect(r.reason).toBe('allowed');
    expect(r.bound).toBe('dpop');
    expect(r.upstream['x-user-id']).toBe('alice');
    expect(r.upstream['x-auth-method']).toBe('jwt');
    expect(r.upstream.dpop).toBeUndefined();
    expect(r.upstream.authorization).toBeUndefined();
  });

  it('the DPoP scheme is case-insensitive; htu compares after normalization (case of host, default port)', async () => {
    const p = await proof({ htu: 'HTTPS://API.example.com:443/v1/orders/7' });
    expect((await send({ token: bound, scheme: 'dpop', proof: p })).status).toBe(200);
  });
});

describe('every rule refuses with 401 and a DPoP challenge', () => {
  const cases: Array<[string, () => Promise<Parameters<typeof send>[0]>, string]> = [
    ['wrong htm', async () => ({ proof: await proof({ htm: 'POST' }) }), 'dpop_htm_mismatch'],
    [
      'wrong htu path',
      async () => ({ proof: await proof({ htu: 'https://api.example.com/v1/orders/8' }) }),
      'dpop_htu_mismatch',
    ],
    [
      'wrong htu host',
      async () => ({ proof: await proof({ htu: 'https://evil.example/v1/orders/7' }) }),
      'dpop_htu_mismatch',
    ],
    ['htu https, Envoy saw http', async () => ({ proof: await proof(), envoyScheme: 'http' }), 'dpop_htu_mismatch'],
    ['ath of another token', async () => ({ proof: await proof({ ath: ath('another-token') }) }), 'dpop_ath_mismatch'],
    ['stale iat', async () => ({ proof: await proof({ iat: nowSeconds() - 66 }) }), 'dpop_iat_invalid'],
    ['iat in the future', async () => ({ proof: await proof({ iat: nowSeconds() + 30 }) }), 'dpop_iat_invalid'],
    ['no jti', async () => ({ proof: await proof({}, { omit: ['jti'] }) }), 'dpop_claim_missing'],
    ['typ JWT', async () => ({ proof: await proof({}, { header: { typ: 'JWT' } }) }), 'dpop_typ_invalid'],
    [
      'alg none',
      async () => ({
        proof: unsignedProof(
          { typ: 'dpop+jwt', alg: 'none', jwk: client.jwk },
          { jti: 'n1', htm: 'GET', htu: HTU, iat: nowSeconds(), ath: ath(bound) },
        ),
      }),
      'dpop_alg_not_allowed',
    ],
    [
      'HS256 keyed with the public jwk',
      async () => {
        const claims = { jti: 'h1', htm: 'GET', htu: HTU, iat: nowSeconds(), ath: ath(bound) };
        const head = { typ: 'dpop+jwt', alg: 'HS256', jwk: client.jwk };
        const input = unsignedProof(head, claims).slice(0, -1);
        const sig = createHmac('sha256', JSON.stringify(client.jwk)).update(input).digest('base64url');
        return { proof: `${input}.${sig}` };
      },
      'dpop_alg_not_allowed',
    ],
    [
      'a private jwk',
      async () => {
        const { exportJWK } = await import('jose');
        const priv = await exportJWK(client.pair.privateKey);
        return { proof: await proof({}, { header: { jwk: priv } }) };
      },
      'dpop_jwk_invalid',
    ],
    [
      'signed by another key than its jwk',
      async () => ({ proof: await proof({}, { signWith: (await proofKey()).pair }) }),
      'dpop_signature_invalid',
    ],
    ['two DPoP headers', async () => ({ proof: [await proof(), await proof()] }), 'dpop_proof_multiple'],
    ['no DPoP header', async () => ({}), 'dpop_proof_missing'],
    ['not a JWS', async () => ({ proof: 'not-a-proof' }), 'dpop_proof_malformed'],
  ];

  it.each(cases)('%s', async (_name, make, reason) => {
    const r = await send({ token: bound, ...(await make()) });
    expect(r).toMatchObject({ status: 401, reason, error: 'invalid_dpop_proof', challenge: PROOF_INVALID });
  });

  it("a proof made with another key than the token's cnf.jkt: invalid_token on the DPoP challenge", async () => {
    const other = await proofKey();
    const r = await send({ token: bound, proof: await proof({}, {}, other) });
    expect(r).toMatchObject({
      status: 401,
      reason: 'dpop_key_mismatch',
      error: 'invalid_token',
      challenge: dpopError('invalid_token', 'The credential is invalid'),
    });
  });

  it('a replayed proof is refused; a proof that failed a check does not use up its jti', async () => {
    const p = await proof();
    expect((await send({ token: bound, proof: p })).status).toBe(200);
    expect(await send({ token: bound, proof: p })).toMatchObject({
      status: 401,
      reason: 'dpop_replayed',
      error: 'invalid_dpop_proof',
      challenge: PROOF_INVALID,
    });
    const q = await proof({}, {});
    expect((await send({ token: bound, proof: q, method: 'DELETE' })).reason).toBe('dpop_htm_mismatch');
    expect((await send({ token: bound, proof: q })).status).toBe(200);
  });
});

describe('binding and scheme', () => {
  it('a DPoP-bound token sent as Bearer is refused (RFC 9449, §7.2), with the DPoP challenge', async () => {
    const r = await send({ token: bound, scheme: 'Bearer' });
    expect(r).toMatchObject({
      status: 401,
      reason: 'dpop_bound_token_as_bearer',
      error: 'invalid_token',
      challenge: dpopError('invalid_token', 'The credential is invalid'),
    });
  });

  it('a token without cnf.jkt sent as DPoP is refused', async () => {
    const plain = accessToken(issuer);
    secrets.push(plain);
    const r = await send({ token: plain, proof: await proof({ ath: ath(plain) }) });
    expect(r).toMatchObject({ status: 401, reason: 'dpop_token_not_bound', error: 'invalid_token' });
    expect(r.challenge).toMatch(/^DPoP realm="api.example.com", error="invalid_token"/);
  });

  it('an unbound Bearer token passes a route without sender_constraint; denies offer both schemes', async () => {
    const plain = accessToken(issuer);
    secrets.push(plain);
    expect((await send({ token: plain, scheme: 'Bearer' })).status).toBe(200);
    const none = await send({});
    expect(none).toMatchObject({
      status: 401,
      reason: 'missing_credentials',
      challenge: `${BEARER}, DPoP realm="api.example.com", ${ALGS}`,
    });
    const expired = accessToken(issuer, { exp: nowSeconds() - 100, iat: nowSeconds() - 200 });
    expect(await send({ token: expired, scheme: 'Bearer' })).toMatchObject({
      status: 401,
      reason: 'jwt_expired',
      challenge: `${BEARER}, error="invalid_token", DPoP realm="api.example.com", ${ALGS}`,
    });
  });

  it('sender_constraint dpop: a plain Bearer token gets 401 and a DPoP challenge only', async () => {
    const plain = accessToken(issuer);
    secrets.push(plain);
    const r = await send({ token: plain, scheme: 'Bearer', path: '/v1/strict' });
    expect(r).toMatchObject({
      status: 401,
      reason: 'dpop_required',
      error: 'invalid_token',
      challenge: `DPoP realm="api.example.com", ${ALGS}`,
    });
    const p = await craftProof(client, { htm: 'GET', htu: 'https://api.example.com/v1/strict', token: bound });
    expect((await send({ token: bound, proof: p, path: '/v1/strict' })).status).toBe(200);
  });
});

describe('server nonces (nonce: required)', () => {
  it('a proof without a nonce gets use_dpop_nonce and DPoP-Nonce; the retry with it passes', async () => {
    const first = await send({ token: bound, proof: await proof() }, nonceSvc);
    expect(first).toMatchObject({
      status: 401,
      reason: 'dpop_nonce_required',
      error: 'use_dpop_nonce',
      challenge: dpopError('use_dpop_nonce', 'A DPoP nonce is required'),
    });
    expect(first.nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    const retry = await send({ token: bound, proof: await proof({ nonce: first.nonce }) }, nonceSvc);
    expect(retry.status).toBe(200);
    const forged = await send(
      { token: bound, proof: await proof({ nonce: `${first.nonce.split('.')[0]}.${'A'.repeat(22)}` }) },
      nonceSvc,
    );
    expect(forged).toMatchObject({ status: 401, reason: 'dpop_nonce_invalid', error: 'use_dpop_nonce' });
    expect(forged.nonce).toBe(first.nonce);
  });
});

describe('hostile DPoP headers', () => {
  it('garbage, oversized, control characters and JSON that is not a JWS: 401 invalid_dpop_proof, never a 5xx', async () => {
    const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const hostile = [
      'a'.repeat(9000),
      'x.y.z',
      `${b({ typ: 'dpop+jwt', alg: 'ES256', jwk: client.jwk })}.${b([1, 2])}.AAAA`,
      `${b({ typ: 'dpop+jwt', alg: 'ES256', jwk: client.jwk, crit: ['exp'] })}.${b({})}.AAAA`,
      `${b({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } })}.${b({})}.AAAA`,
      `${b({ typ: 'dpop+jwt', alg: 'ES256', jwk: client.jwk })}.${b({ jti: 'j'.repeat(300) })}.AAAA`,
      `${b({ typ: 'dpop+jwt', alg: 'ES256', jwk: null })}..`,
      `${b('__proto__')}.${b({ __proto__: { admin: true } })}.`,
      'eyJ.eyJ.\u0000',
    ];
    for (const p of hostile) {
      const r = await send({ token: bound, proof: p });
      expect(r.status, p.slice(0, 80)).toBe(401);
      expect(r.error).toBe('invalid_dpop_proof');
      expect(r.reason).toMatch(/^dpop_/);
    }
  });
});
