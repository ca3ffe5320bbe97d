// Identity values an upstream can misread never reach it as they are. Over gRPC with Envoy's protos:
// by default (unsafe: reject) a subject outside the safe form (visible ASCII without " , ; \,
// at most 256 characters) is 401 invalid_token with reason identity_value_unsafe / _too_long and
// nothing reaches the upstream; a header set to percent_encode carries every value encoded, and
// the upstream decodes it back exactly.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey, nowSeconds, signRaw, type TestKey } from '../jwt/helpers.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';

const ISS = 'https://idp.identity-values.test';
const AUD = 'https://api.example.com';
const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';

let svc: TestService;
let key: TestKey;
const presented: string[] = [];

beforeAll(async () => {
  key = await makeKey('iv-1', 'ES256');
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  svc = await startService(
    `
realm: api.example.com
headers:
  set:
    x-user-id: subject
    x-client-id: { from: client_id, unsafe: percent_encode }
    x-scopes: scopes
    x-auth-method: method
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${AUD}"], jwks_file: jwks.json, algorithms: [ES256] }
rate_limits:
  - { name: per-client, key: client_id, limit: 1000, window_seconds: 60 }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [jwt], rate_limit: per-client }
`,
    { dir },
  );
});

afterAll(async () => {
  await svc?.stop();
});

function token(over: Record<string, unknown>): string {
  const now = nowSeconds();
  const claims = {
    iss: ISS,
    aud: AUD,
    sub: 'alice',
    client_id: 'web',
    scope: 'orders:read',
    iat: now,
    exp: now + 300,
    jti: randomUUID(),
    ...over,
  };
  return signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'iv-1' }, claims, key.privateKey, 'ES256');
}

async function ask(t: string) {
  presented.push(t);
  // The client also tries to name itself: that never reaches the upstream either.
  const out = await svc.envoy({
    method: 'GET',
    path: '/v1/orders/7',
    headers: { authorization: `Bearer ${t}`, 'x-user-id': 'root', 'x-client-id': 'admin' },
  });
  return {
    ...out,
    reason: out.response.dynamic_metadata?.fields?.reason?.stringValue,
    metadata: out.response.dynamic_metadata?.fields ?? {},
  };
}

async function expectRefused(t: string, reason: string, value?: string) {
  const logged = svc.logs.length;
  const out = await ask(t);
  expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
    status: 401,
    challenge: INVALID,
    reason,
  });
  expect(JSON.parse(out.body!)).toEqual({ error: 'invalid_token', error_description: 'The credential is invalid' });
  expect(out.upstreamHeaders).toEqual({});
  // The refused values are not handed to Envoy's access log either.
  expect(out.metadata.subject).toBeUndefined();
  expect(out.metadata.client_id).toBeUndefined();
  // Nor in the deny's log line.
  await new Promise((r) => setTimeout(r, 10));
  if (value !== undefined)
    for (const line of svc.logs.slice(logged))
      expect(line.includes(JSON.stringify(value).slice(1, -1)), line).toBe(false);
}

const UNSAFE_SUBJECTS = [
  'bob, admin',
  'bob,admin',
  'bob;role=admin',
  'bob\tadmin',
  'bob\u007f',
  'bob\u2028admin',
  'bob\u0085',
  'bøb',
  'Ωmega',
  '😀',
  ' bob',
  'bob ',
  'bob admin',
  '"bob"',
  'bob\\admin',
  'bob\u0000',
  'a\r\nx-admin: 1',
];

describe('x-user-id (unsafe: reject, the default)', () => {
  it('a subject an upstream can misread is refused: 401 invalid_token, identity_value_unsafe, nothing upstream; a safe one passes unchanged', async () => {
    for (const sub of ['alice', 'auth0|123456', 'user@example.com', 'a%2Cb']) {
      const out = await ask(token({ sub }));
      expect(out.status).toBe(200);
      expect(out.upstreamHeaders['x-user-id']).toBe(sub); // the client's own x-user-id replaced
      expect(out.upstreamHeaders['x-client-id']).toBe('web');
    }
    for (const sub of UNSAFE_SUBJECTS) await expectRefused(token({ sub }), 'identity_value_unsafe', sub);
  });

  it('an overlong subject is refused: identity_value_too_long', async () => {
    await expectAllowedLength(256);
    for (const n of [257, 1000, 5000])
      await expectRefused(token({ sub: 'a'.repeat(n) }), 'identity_value_too_long', 'a'.repeat(n));
  });

  it('a scope with a comma or semicolon (RFC 6749 allows them) cannot turn x-scopes into a list', async () => {
    for (const scope of ['orders:read a,b', 'orders:read x;y'])
      await expectRefused(token({ scope }), 'identity_value_unsafe');
  });

  it('a lone surrogate never reaches a CheckResponse: the token is refused before any identity exists', async () => {
    const raw = JSON.stringify({
      iss: ISS,
      aud: AUD,
      sub: 'PLACEHOLDER',
      client_id: 'web',
      iat: nowSeconds(),
      exp: nowSeconds() + 300,
      jti: randomUUID(),
    }).replace('PLACEHOLDER', '\\ud800');
    const out = await ask(signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'iv-1' }, raw, key.privateKey, 'ES256'));
    expect({ status: out.status, reason: out.reason }).toEqual({ status: 401, reason: 'jwt_utf8_invalid' });
  });
});

async function expectAllowedLength(n: number) {
  const out = await ask(token({ sub: 'a'.repeat(n) }));
  expect(out.status).toBe(200);
  expect(out.upstreamHeaders['x-user-id']).toHaveLength(n);
}

describe('x-client-id (unsafe: percent_encode)', () => {
  it('every value is percent-encoded (only unreserved characters left) and decodes back exactly', async () => {
    for (const clientId of ['web', ...UNSAFE_SUBJECTS, '100%', 'a+b', 'bob%2C%20admin']) {
      const out = await ask(token({ client_id: clientId }));
      expect(out.status, JSON.stringify(clientId)).toBe(200);
      const sent = out.upstreamHeaders['x-client-id'];
      expect(sent).toMatch(/^([A-Za-z0-9._~-]|%[0-9A-F]{2})+$/);
      expect(decodeURIComponent(sent)).toBe(clientId);
    }
    expect((await ask(token({ client_id: 'bob, admin' }))).upstreamHeaders['x-client-id']).toBe('bob%2C%20admin');
  });

  it('bounded after encoding: 256 characters on the wire at most', async () => {
    await expectRefused(token({ client_id: 'é'.repeat(43) }), 'identity_value_too_long', 'é'.repeat(43)); // 258 encoded
    expect((await ask(token({ client_id: 'é'.repeat(42) }))).status).toBe(200); // 252
    // No token of this file reached a log line.
    const logs = svc.logs.join('\n');
    for (const t of presented) expect(logs.includes(t)).toBe(false);
  });
});
