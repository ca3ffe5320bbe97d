// Certificate-bound tokens (RFC 8705), introspected tokens bound with cnf, and the mtls credential
// kind, over gRPC with Envoy's protos. Certificates come from a small openssl PKI made in the test
// setup; the introspection endpoint is a real HTTP server answering RFC 7662 JSON that carries
// `cnf`. The client certificate reaches Portcullis as Envoy sends it (source.certificate, URL-encoded
// PEM) or, for a service configured to trust a front proxy, in x-forwarded-client-cert.
// @module-tag openssl
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, nowSeconds, type TestKey } from '../jwt/helpers.ts';
import { makeTestPki, type TestCert, type TestPki } from '../support/pki.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';
import { accessToken, craftProof, outcome, proofKey, type ProofKey } from './helpers.ts';

const ISS = 'https://idp.certs.test';
const AUD = 'https://api.example.com';

let pki: TestPki;
let key: TestKey;
let client: ProofKey;
let introspection: Server;
let introspectionUrl: string;
/** Opaque token -> the introspection answer. */
const answers = new Map<string, Record<string, unknown>>();
let svc: TestService;
let pinned: TestService;
let behindProxy: TestService;
let rfc9440: TestService;

const x5t = (c: TestCert) => createHash('sha256').update(c.der).digest('base64url');

const config = (extra: string) => `
realm: api.example.com
headers:
  set: { x-user-id: subject, x-client-id: client_id, x-auth-method: method }
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${AUD}"], jwks_file: jwks.json, algorithms: [ES256] }
  introspection:
    endpoint: ${introspectionUrl}
    allow_http: true
    client_id: portcullis
    client_secret: s3cret-for-tests
    audiences: ["${AUD}"]
    cache: { max_ttl_seconds: 1, negative_ttl_seconds: 1 }
  dpop: { algorithms: [ES256] }
${extra}
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [jwt, oauth2] }
  - { name: bound-only, match: { path_prefix: /v1/bound }, auth: [jwt, oauth2], sender_constraint: mtls }
  - { name: any, match: { path_prefix: /v1/any }, auth: [jwt, oauth2], sender_constraint: any }
  - { name: workloads, match: { path_prefix: /internal }, auth: [mtls] }
`;

async function service(extra: string, files: Record<string, string> = {}): Promise<TestService> {
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return startService(config(extra), { dir });
}

beforeAll(async () => {
  pki = makeTestPki();
  key = await makeKey('c-1', 'ES256');
  client = await proofKey();
  introspection = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answers.get(token) ?? { active: false }));
    });
  });
  await new Promise<void>((r) => introspection.listen(0, '127.0.0.1', r));
  introspectionUrl = `http://127.0.0.1:${(introspection.address() as AddressInfo).port}/introspect`;
  const mtls = 'mtls: { trust_domains: [example.org], client_id: spiffe_path, scopes: [internal] }';
  svc = await service(`  ${mtls}`);
  pinned = await service(`  mtls: { trust_domains: [example.org], ca_file: ca.pem }`, {
    'ca.pem': pki.intermediate.pem,
  });
  behindProxy = await service(`  ${mtls}\n  client_certificate: { source: xfcc }`);
  rfc9440 = await service(`  ${mtls}\n  client_certificate: { source: client-cert }`);
});

afterAll(async () => {
  await Promise.all([svc?.stop(), pinned?.stop(), behindProxy?.stop(), rfc9440?.stop()]);
  await new Promise((r) => introspection?.close(r));
});

function opaque(name: string, over: Record<string, unknown>): string {
  const token = `opaque-${name}-${Math.random().toString(36).slice(2)}`;
  const now = nowSeconds();
  answers.set(token, {
    active: true,
    token_type: 'Bearer',
    client_id: 'web',
    sub: 'alice',
    aud: AUD,
    scope: 'orders:read',
    iat: now,
    exp: now + 300,
    ...over,
  });
  return token;
}

async function send(
  on: TestService,
  opts: { authorization?: string; cert?: TestCert; path?: string; headers?: Record<string, string>; pem?: string },
) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.authorization) headers.authorization = opts.authorization;
  return outcome(
    await on.envoy({
      path: opts.path ?? '/v1/orders',
      headers,
      peerCertificatePem: opts.pem ?? opts.cert?.pem,
    }),
  );
}

describe('certificate-bound tokens (RFC 8705): cnf["x5t#S256"] against source.certificate', () => {
  it('a JWT bound to the presented certificate passes (bound mtls); another or no certificate is refused', async () => {
    const token = accessToken({ iss: ISS, aud: AUD, key }, { cnf: { 'x5t#S256': x5t(pki.spiffe) } });
    const ok = await send(svc, { authorization: `Bearer ${token}`, cert: pki.spiffe });
    expect(ok).toMatchObject({ status: 200, bound: 'mtls' });
    expect(await send(svc, { authorization: `Bearer ${token}`, cert: pki.foreign })).toMatchObject({
      status: 401,
      reason: 'cnf_x5t_mismatch',
      error: 'invalid_token',
    });
    expect(await send(svc, { authorization: `Bearer ${token}` })).toMatchObject({
      status: 401,
      reason: 'mtls_certificate_missing',
      error: 'invalid_token',
    });
    expect(await send(svc, { authorization: `Bearer ${token}`, pem: 'garbage' })).toMatchObject({
      status: 400,
      reason: 'mtls_certificate_malformed',
      error: 'invalid_request',
    });
  });

  it('an introspected token whose answer carries cnf["x5t#S256"]: the same', async () => {
    const token = opaque('x5t', { cnf: { 'x5t#S256': x5t(pki.spiffe) } });
    expect(await send(svc, { authorization: `Bearer ${token}`, cert: pki.spiffe })).toMatchObject({
      status: 200,
      bound: 'mtls',
    });
    expect((await send(svc, { authorization: `Bearer ${token}`, cert: pki.dn })).reason).toBe('cnf_x5t_mismatch');
  });

  it('a cnf this server cannot check (jwk) or a malformed one is refused, never taken as unbound', async () => {
    const jwk = opaque('jwk', { cnf: { jwk: client.jwk } });
    expect((await send(svc, { authorization: `Bearer ${jwk}` })).reason).toBe('cnf_unsupported');
    const bad = accessToken({ iss: ISS, aud: AUD, key }, { cnf: { 'x5t#S256': 'short' } });
    expect((await send(svc, { authorization: `Bearer ${bad}`, cert: pki.spiffe })).reason).toBe('cnf_invalid');
  });

  it('sender_constraint mtls refuses an unbound token; any accepts a certificate-bound one', async () => {
    const plain = accessToken({ iss: ISS, aud: AUD, key });
    expect(await send(svc, { authorization: `Bearer ${plain}`, path: '/v1/bound', cert: pki.spiffe })).toMatchObject({
      status: 401,
      reason: 'mtls_binding_required',
    });
    expect((await send(svc, { authorization: `Bearer ${plain}`, path: '/v1/any' })).reason).toBe(
      'sender_constraint_required',
    );
    const token = accessToken({ iss: ISS, aud: AUD, key }, { cnf: { 'x5t#S256': x5t(pki.spiffe) } });
    expect((await send(svc, { authorization: `Bearer ${token}`, path: '/v1/any', cert: pki.spiffe })).status).toBe(200);
  });
});

describe('introspected DPoP-bound tokens: cnf.jkt from the introspection answer', () => {
  it('token_type DPoP with cnf.jkt: the proof is checked; the same token as Bearer is refused', async () => {
    const token = opaque('dpop', { token_type: 'DPoP', cnf: { jkt: client.jkt } });
    const proof = await craftProof(client, { htm: 'GET', htu: 'https://api.example.com/v1/orders', token });
    expect(await send(svc, { authorization: `DPoP ${token}`, headers: { dpop: proof } })).toMatchObject({
      status: 200,
      bound: 'dpop',
    });
    expect(await send(svc, { authorization: `Bearer ${token}` })).toMatchObject({
      status: 401,
      reason: 'dpop_bound_token_as_bearer',
    });
    const stranger = await proofKey();
    const wrong = await craftProof(stranger, { htm: 'GET', htu: 'https://api.example.com/v1/orders', token });
    expect(await send(svc, { authorization: `DPoP ${token}`, headers: { dpop: wrong } })).toMatchObject({
      status: 401,
      reason: 'dpop_key_mismatch',
    });
  });
});

describe('the mtls credential kind', () => {
  it('a SPIFFE workload certificate is the identity: subject, client_id (spiffe_path), x-auth-method mtls', async () => {
    const r = await send(svc, { path: '/internal/jobs', cert: pki.spiffe });
    expect(r).toMatchObject({ status: 200, bound: 'mtls' });
    expect(r.upstream['x-user-id']).toBe('spiffe://example.org/ns/prod/sa/api');
    expect(r.upstream['x-client-id']).toBe('ns/prod/sa/api');
    expect(r.upstream['x-auth-method']).toBe('mtls');
  });

  it('another trust domain 403; expired 401; no certificate 401; unreadable 400', async () => {
    expect(await send(svc, { path: '/internal/jobs', cert: pki.otherTrustDomain })).toMatchObject({
      status: 403,
      reason: 'mtls_trust_domain_not_allowed',
      error: 'forbidden',
    });
    expect(await send(svc, { path: '/internal/jobs', cert: pki.expired })).toMatchObject({
      status: 401,
      reason: 'mtls_certificate_expired',
      error: 'invalid_token',
    });
    expect(await send(svc, { path: '/internal/jobs', cert: pki.notYetValid })).toMatchObject({
      status: 401,
      reason: 'mtls_certificate_not_yet_valid',
    });
    expect(await send(svc, { path: '/internal/jobs' })).toMatchObject({ status: 401, reason: 'missing_credentials' });
    expect(
      await send(svc, {
        path: '/internal/jobs',
        pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      }),
    ).toMatchObject({
      status: 400,
      reason: 'mtls_certificate_malformed',
      error: 'invalid_request',
    });
    expect((await send(svc, { path: '/internal/jobs', cert: pki.twoUris })).reason).toBe('mtls_spiffe_id_invalid');
  });

  it('ca_file pins the chain: a certificate of the pinned intermediate passes, one from the root alone does not', async () => {
    expect((await send(pinned, { path: '/internal/jobs', cert: pki.spiffeViaIntermediate })).status).toBe(200);
    expect(await send(pinned, { path: '/internal/jobs', cert: pki.spiffe })).toMatchObject({
      status: 401,
      reason: 'mtls_chain_untrusted',
    });
  });

  it('a certificate header is ignored unless configured; with source xfcc it is the only source', async () => {
    const xfcc = `By=spiffe://example.org/edge;Hash=${createHash('sha256').update(pki.spiffe.der).digest('hex')};Cert="${encodeURIComponent(pki.spiffe.pem)}"`;
    // Not configured: a client-written XFCC is no certificate at all.
    expect((await send(svc, { path: '/internal/jobs', headers: { 'x-forwarded-client-cert': xfcc } })).reason).toBe(
      'missing_credentials',
    );
    const r = await send(behindProxy, { path: '/internal/jobs', headers: { 'x-forwarded-client-cert': xfcc } });
    expect(r.status).toBe(200);
    expect(r.upstream['x-user-id']).toBe('spiffe://example.org/ns/prod/sa/api');
    // Configured for XFCC: Envoy's own source.certificate is not read.
    expect((await send(behindProxy, { path: '/internal/jobs', cert: pki.spiffe })).reason).toBe('missing_credentials');
  });
});

describe('RFC 9440 Client-Cert from a trusted front proxy', () => {
  it('a certificate-bound token passes with the matching Client-Cert; two values are refused with 400', async () => {
    const token = accessToken({ iss: ISS, aud: AUD, key }, { cnf: { 'x5t#S256': x5t(pki.spiffe) } });
    const header = `:${pki.spiffe.der.toString('base64')}:`;
    expect(await send(rfc9440, { authorization: `Bearer ${token}`, headers: { 'client-cert': header } })).toMatchObject(
      { status: 200, bound: 'mtls' },
    );
    expect(
      await send(rfc9440, {
        authorization: `Bearer ${token}`,
        headers: { 'client-cert': `${header},:${pki.dn.der.toString('base64')}:` },
      }),
    ).toMatchObject({ status: 400, reason: 'mtls_certificate_multiple', error: 'invalid_request' });
    // Envoy's own source.certificate is not read when the config names a header.
    expect((await send(rfc9440, { authorization: `Bearer ${token}`, cert: pki.spiffe })).reason).toBe(
      'mtls_certificate_missing',
    );
  });
});
