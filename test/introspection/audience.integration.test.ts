// Introspection answers for someone else: a token the authorization server issued for another API
// (its `aud`), or an answer naming another issuer, is refused. The audience check is on by
// default: a config that names no audiences is an error unless it says allow_any_audience: true.
// The real oidc-provider issues opaque tokens for two resources; Portcullis runs over gRPC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/policy/load.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { startService, type TestService } from '../support/service.ts';

const API = 'https://api.example.com';
const OTHER_API = 'https://payroll.example.com';
const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';

let idp: TestIdp;
const services: TestService[] = [];

const serve = async (introspectionExtra: string) => {
  const svc = await startService(`
realm: api.example.com
credentials:
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    timeout_ms: 2000
${introspectionExtra
  .trim()
  .split('\n')
  .map((l) => `    ${l.trim()}`)
  .join('\n')}
routes:
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [oauth2], scopes: [orders:read] }
`);
  services.push(svc);
  return svc;
};

const ask = async (svc: TestService, token: string) => {
  const out = await svc.envoy({ method: 'GET', path: '/v1/orders/7', headers: { authorization: `Bearer ${token}` } });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
};

async function expectInvalid(svc: TestService, token: string, reason: string) {
  const out = await ask(svc, token);
  expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
    status: 401,
    challenge: INVALID,
    reason,
  });
  expect(JSON.parse(out.body!)).toEqual({ error: 'invalid_token', error_description: 'The credential is invalid' });
  expect(out.upstreamHeaders).toEqual({});
}

async function expectAllowed(svc: TestService, token: string) {
  const out = await ask(svc, token);
  expect({ status: out.status, reason: out.reason }).toEqual({ status: 200, reason: 'allowed' });
  return out;
}

/** An opaque token; with `resource`, the introspection answer carries it as `aud`. */
const token = async (resource?: string) =>
  (await idp.clientCredentials({ scope: 'orders:read', resource })).access_token;

beforeAll(async () => {
  idp = await startIdp({
    resources: {
      [API]: { scope: 'orders:read', format: 'opaque' },
      [OTHER_API]: { scope: 'orders:read', format: 'opaque' },
    },
  });
});

afterAll(async () => {
  for (const s of services) await s.stop();
  await idp?.close();
});

describe('the audience check is the default', () => {
  const base = (extra = '') =>
    `credentials: { introspection: { endpoint: "https://idp/introspect", client_id: gw, client_secret: s${extra} } }`;
  const problems = (yaml: string) => {
    try {
      parseConfig(yaml);
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  };

  it('no audiences is a config error naming the option, unless allow_any_audience: true is said', () => {
    expect(problems(base())).toEqual([
      expect.stringMatching(
        /^credentials\.introspection\.audiences: list the audiences of this API .*allow_any_audience: true/,
      ),
    ]);
    expect(problems(base(', audiences: []'))).toEqual([
      expect.stringMatching(/^credentials\.introspection\.audiences: /),
    ]);
    expect(problems(base(', allow_any_audience: false'))).toHaveLength(1);
    expect(problems(base(', allow_any_audience: true'))).toEqual([]);
    expect(problems(base(`, audiences: ["${API}"]`))).toEqual([]);
    expect(problems(base(`, audiences: ["${API}"], allow_any_audience: true`))).toEqual([
      'credentials.introspection.allow_any_audience: set either audiences or allow_any_audience: true, not both',
    ]);
  });
});

describe('answers for another API or another issuer', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await serve(`audiences: [${API}]\nissuer: ${idp.issuer}`);
  });

  it('a token issued for another API of the same server is refused; one for this API passes', async () => {
    expect((await idp.introspect(await token(OTHER_API))).aud).toBe(OTHER_API); // the premise
    await expectInvalid(svc, await token(OTHER_API), 'token_audience_mismatch');
    await expectAllowed(svc, await token(API));
  });

  it('a token the server did not restrict to any audience (no aud in the answer) passes by default', async () => {
    expect((await idp.introspect(await token())).aud).toBeUndefined();
    await expectAllowed(svc, await token());
  });

  it('require_audience: true refuses an answer without aud', async () => {
    const strict = await serve(`audiences: [${API}]\nrequire_audience: true`);
    await expectInvalid(strict, await token(), 'token_audience_missing');
    await expectAllowed(strict, await token(API));
    await expectInvalid(strict, await token(OTHER_API), 'token_audience_mismatch');
  });

  it('an answer whose iss is not the configured issuer is refused', async () => {
    for (const issuer of ['https://idp.example.com', `${idp.issuer}/`, idp.issuer.replace('127.0.0.1', 'localhost')]) {
      const other = await serve(`audiences: [${API}]\nissuer: "${issuer}"`);
      await expectInvalid(other, await token(API), 'token_issuer_mismatch');
    }
  });

  it('allow_any_audience: true accepts a token for another API (said explicitly)', async () => {
    const any = await serve('allow_any_audience: true');
    await expectAllowed(any, await token(OTHER_API));
  });
});
