// Anything JWT-shaped that fails JWT validation is 401 invalid_token and is never sent to the
// introspection endpoint: that would hand other issuers' tokens to our authorization server, and a
// server that introspects JWTs would be a way around every JWT rule. The real oidc-provider counts
// its introspection requests; Portcullis runs over gRPC with Envoy's protos.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRaw } from '../jwt/helpers.ts';
import { DEFAULT_RESOURCE, INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { startService, type TestService } from '../support/service.ts';

const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';
const INTROSPECT = '/token/introspection';
const OTHER_API = 'https://payroll.example.com';

let idp: TestIdp;
let svc: TestService;
let opaqueOnly: TestService;
let jwt: string;
const presented: string[] = [];

const introspection = () => `
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [${DEFAULT_RESOURCE}]
    timeout_ms: 2000`;

beforeAll(async () => {
  idp = await startIdp({
    resources: {
      [DEFAULT_RESOURCE]: { scope: 'orders:read', format: 'jwt' },
      [OTHER_API]: { scope: 'orders:read', format: 'jwt' },
    },
  });
  svc = await startService(`
realm: api.example.com
credentials:
  jwt:
    - { issuer: "${idp.issuer}", audiences: ["${DEFAULT_RESOURCE}"], jwks_uri: "${idp.jwksUri}", allow_http: true, algorithms: [RS256] }
${introspection()}
routes:
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [jwt, oauth2], scopes: [orders:read] }
  - { name: reports, match: { methods: [GET], path_prefix: /v1/reports }, auth: [oauth2], scopes: [orders:read] }
`);
  // No JWT issuer at all: introspection is the only way in, and still no JWT-shaped token goes there.
  opaqueOnly = await startService(`
realm: api.example.com
credentials:
${introspection()}
routes:
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:read] }
`);
  jwt = await idp.jwtAccessToken('orders:read');
});

afterAll(async () => {
  await svc?.stop();
  await opaqueOnly?.stop();
  await idp?.close();
});

async function ask(s: TestService, token: string, path = '/v1/orders/7') {
  presented.push(token);
  const out = await s.envoy({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
}

/** 401 invalid_token with `reason`, nothing upstream, and no introspection call. */
async function expectNotIntrospected(s: TestService, token: string, reason: string, path?: string) {
  const before = idp.requestCount(INTROSPECT);
  const out = await ask(s, token, path);
  expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
    status: 401,
    challenge: INVALID,
    reason,
  });
  expect(JSON.parse(out.body!)).toEqual({ error: 'invalid_token', error_description: 'The credential is invalid' });
  expect(out.upstreamHeaders).toEqual({});
  expect(idp.requestCount(INTROSPECT)).toBe(before);
}

/** Near-misses of a real JWT from the IdP, with the reason each must get. */
function nearMisses(): Array<[string, string, string]> {
  const [h, p, s] = jwt.split('.');
  const toBase64 = (x: string) => x.replaceAll('-', '+').replaceAll('_', '/');
  return [
    ['<jwt>=', `${jwt}=`, 'jwt_base64_invalid'],
    ['<jwt>==', `${jwt}==`, 'jwt_base64_invalid'],
    ['h.p', `${h}.${p}`, 'jwt_malformed'],
    ['h.p.', `${h}.${p}.`, 'jwt_signature_missing'],
    ['h.p.s.', `${jwt}.`, 'jwt_malformed'],
    ['h.p.s.x', `${jwt}.eHg`, 'jwt_malformed'],
    ['h.p.s.x.y.z (six parts)', `${jwt}.eHg.eXk.eno`, 'jwt_malformed'],
    ['a JWT in the base64 alphabet (+/)', [h, p, s].map(toBase64).join('.'), 'jwt_base64_invalid'],
    ['.p.s (no header)', `.${p}.${s}`, 'jwt_header_malformed'],
    ['h..s (no payload)', `${h}..${s}`, 'jwt_payload_malformed'],
    ['the header alone', h, 'jwt_malformed'],
    ['the dots removed', `${h}${p}${s}`, 'jwt_malformed'],
    ['a five-part JWE', `${h}.${p}.${s}.${s}.${s}`, 'jwt_encrypted_unsupported'],
    ['dots only', '..', 'jwt_header_malformed'],
  ];
}

describe('JWT-shaped tokens are JWTs or nothing', () => {
  it('the controls: the real JWT passes without introspection; an opaque token (also one with a single dot) is introspected', async () => {
    const before = idp.requestCount(INTROSPECT);
    expect((await ask(svc, jwt)).status).toBe(200);
    expect(idp.requestCount(INTROSPECT)).toBe(before);
    expect((await ask(svc, await idp.opaqueAccessToken('orders:read'))).status).toBe(200);
    const hydraLike = await ask(svc, `ory_at_${randomUUID().replaceAll('-', '')}.${randomUUID().replaceAll('-', '')}`);
    expect({ status: hydraLike.status, reason: hydraLike.reason }).toEqual({ status: 401, reason: 'token_inactive' });
    expect(idp.requestCount(INTROSPECT)).toBe(before + 2);
  });

  it('near-misses of a JWT, a valid JWT from an unknown issuer or for another audience: refused as JWTs, never introspected', async () => {
    expect(nearMisses()[7][1]).not.toBe(jwt); // the +/ variant really differs
    for (const [, token, reason] of nearMisses()) await expectNotIntrospected(svc, token, reason);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'https://other-issuer.example',
      aud: DEFAULT_RESOURCE,
      sub: 'u',
      client_id: 'c',
      scope: 'orders:read',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
    };
    await expectNotIntrospected(
      svc,
      signRaw({ alg: 'RS256', typ: 'at+jwt', kid: 'k' }, claims, privateKey, 'RS256'),
      'jwt_issuer_unknown',
    );
    await expectNotIntrospected(svc, await idp.jwtAccessToken('orders:read', OTHER_API), 'jwt_audience_mismatch');
    await expectNotIntrospected(svc, `${jwt.slice(0, -2)}AA`, 'jwt_signature_invalid');
  });

  it('on a route that takes only opaque tokens, and where no JWT issuer is configured at all, JWT-shaped tokens are refused, not introspected', async () => {
    await expectNotIntrospected(svc, jwt, 'credential_kind_not_accepted', '/v1/reports/1');
    for (const [, token] of [['jwt', jwt] as const, ...nearMisses().map(([n, t]) => [n, t] as const)]) {
      await expectNotIntrospected(opaqueOnly, token, 'credential_kind_not_accepted');
    }
    // None of the tokens of this file reached a log line.
    const logs = [...svc.logs, ...opaqueOnly.logs].join('\n');
    for (const t of presented) if (t.length > 20) expect(logs.includes(t)).toBe(false);
  });
});
