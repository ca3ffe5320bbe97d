// The sender-constraint step of decide() (src/core/sender-constraint.ts), through the pure decide()
// with in-memory deps and the real PopChecker: when the step runs at all, what a deployment
// without the checker does with a bound token, the mtls kind against sender_constraint, and the
// shape of the combined DPoP / Bearer challenge on each kind of deny.
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import type { ProofOfPossession } from '../../src/core/sender-constraint.ts';
import { newIdentity } from '../../src/core/identity.ts';
import type { AuthzRequest, Decision, Identity } from '../../src/core/types.ts';
import { DENY_ERRORS, DENY_REASONS, isDenyReason } from '../../src/core/reasons.ts';
import { PopChecker } from '../../src/credentials/pop/checker.ts';
import { POP_REASONS } from '../../src/credentials/pop/reasons.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryReplayCache } from '../../src/stores/replay-cache.ts';
import { decideDeps } from '../support/deps.ts';

const CONFIG = `
realm: api
credentials:
  jwt:
    - { issuer: https://idp.example.com, audiences: [https://api.example.com], jwks_file: jwks.json }
  dpop: { algorithms: [ES256, EdDSA] }
  mtls: { trust_domains: [example.org] }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [jwt], scopes: [orders:read] }
  - { name: strict, match: { path_prefix: /v1/strict }, auth: [jwt], sender_constraint: dpop }
  - { name: bound, match: { path_prefix: /v1/bound }, auth: [jwt], sender_constraint: mtls }
  - { name: jobs, match: { path_prefix: /internal }, auth: [jwt, mtls], sender_constraint: dpop }
`;
const policy = compilePolicy(parseConfig(CONFIG));
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const JKT = 'A'.repeat(43);

function req(path: string, h: Record<string, string> = {}, over: Partial<AuthzRequest> = {}): AuthzRequest {
  return {
    method: 'GET',
    host: 'api.example.com',
    rawPath: path,
    sourceIp: '10.0.0.5',
    contextExtensions: {},
    headers: Object.assign(Object.create(null), h) as Record<string, string>,
    scheme: 'https',
    ...over,
  };
}

const identity = (claims?: Record<string, unknown>): Identity =>
  newIdentity('jwt', { subject: 'alice', scopes: ['orders:read'], claims });

const pop = () =>
  new PopChecker({
    dpop: {
      policy: { algorithms: ['ES256', 'EdDSA'], maxAgeSeconds: 60, clockSkewSeconds: 5 },
      origins: { kind: 'request' },
      replay: new MemoryReplayCache(),
    },
    certificateSource: { kind: 'envoy' },
    now: Date.now,
  });

async function run(r: AuthzRequest, id: Identity, withPop = true): Promise<Decision> {
  const deps = decideDeps({ now: Date.now, verifyJwt: () => Promise.resolve(id) });
  const workload = newIdentity('mtls', { subject: 'spiffe://example.org/job', scopes: [], bound: 'mtls' });
  const verifiers = { ...deps.verifiers, mtls: { verify: () => Promise.resolve(workload) } };
  return decide(r, policy, { ...deps, verifiers, ...(withPop ? { pop: pop() } : {}) });
}
const challenge = (d: Decision) => d.responseHeaders.find((h) => h.name === 'www-authenticate')?.value;

describe('when the step runs', () => {
  it('an unbound Bearer token on a route that demands nothing: allowed, no binding', async () => {
    const d = await run(req('/v1/orders', { authorization: `Bearer ${JWT}` }), identity());
    expect(d).toMatchObject({ allowed: true });
    expect(d.identity?.bound).toBeUndefined();
  });

  it('without a checker, a token with cnf is refused rather than taken as a bearer token', async () => {
    const d = await run(req('/v1/orders', { authorization: `Bearer ${JWT}` }), identity({ cnf: { jkt: JKT } }), false);
    expect(d).toMatchObject({ allowed: false, status: 401, reason: 'cnf_unsupported' });
    const e = await run(req('/v1/strict', { authorization: `Bearer ${JWT}` }), identity(), false);
    expect(e).toMatchObject({ allowed: false, reason: 'sender_constraint_required' });
  });

  it('a bound token is refused before its scopes are looked at (401, not 403)', async () => {
    const d = await run(
      req('/v1/orders', { authorization: `Bearer ${JWT}` }),
      newIdentity('jwt', { scopes: [], claims: { cnf: { jkt: JKT } } }),
    );
    expect(d).toMatchObject({ status: 401, reason: 'dpop_bound_token_as_bearer' });
  });

  it('the mtls credential satisfies mtls, never dpop', async () => {
    const d = await run(req('/internal/x', {}, { peerCertificate: 'x' }), identity());
    expect(d).toMatchObject({ allowed: false, reason: 'dpop_required' });
    expect(challenge(d)).toBe('DPoP realm="api", algs="ES256 EdDSA"');
  });
});

describe('a renewed nonce', () => {
  it('reaches the client on a deny after the proof passed (here a missing scope), not only on the allow', async () => {
    const renewing: ProofOfPossession = {
      dpopAlgorithms: ['ES256'],
      check: () => Promise.resolve({ ok: true, bound: 'dpop', responseHeaders: [{ name: 'dpop-nonce', value: 'n2' }] }),
    };
    const deps = decideDeps({ now: Date.now, verifyJwt: () => Promise.resolve(newIdentity('jwt', { scopes: [] })) });
    const d = await decide(req('/v1/orders/1', { authorization: `DPoP ${JWT}`, dpop: 'p' }), policy, {
      ...deps,
      pop: renewing,
    });
    expect(d.reason).toBe('scope_missing');
    expect(d.responseHeaders).toContainEqual({ name: 'dpop-nonce', value: 'n2' });
  });
});

describe('the two catalogs', () => {
  it('every refusal of src/credentials/pop/ is a catalog reason with the same status', () => {
    for (const [reason, info] of Object.entries(POP_REASONS)) {
      expect(isDenyReason(reason), reason).toBe(true);
      const row = DENY_REASONS[reason as keyof typeof DENY_REASONS];
      expect(DENY_ERRORS[row.error].status, reason).toBe(info.status);
      if ('error' in info) expect(row.error, reason).toBe(info.error);
    }
  });
});

describe('config', () => {
  it('sender_constraint dpop on a route without a token kind is a config error naming the route', () => {
    expect(() =>
      parseConfig(`
credentials: { dpop: {}, mtls: { trust_domains: [example.org] } }
routes: [{ name: jobs, match: { path_prefix: /x }, auth: [mtls], sender_constraint: dpop }]
`),
    ).toThrow(/routes\.0\.sender_constraint|routes\[0\]\.sender_constraint/);
  });
});

describe('the challenge', () => {
  it('missing credentials: Bearer then DPoP with algs, one header value', async () => {
    const d = await run(req('/v1/orders'), identity());
    expect(challenge(d)).toBe('Bearer realm="api", DPoP realm="api", algs="ES256 EdDSA"');
  });

  it('insufficient scope (403) keeps its Bearer challenge alone', async () => {
    const d = await run(req('/v1/orders', { authorization: `Bearer ${JWT}` }), newIdentity('jwt', { scopes: [] }));
    expect(d).toMatchObject({ status: 403 });
    expect(challenge(d)).toBe('Bearer realm="api", error="insufficient_scope", scope="orders:read"');
  });

  it('a route with sender_constraint mtls offers no DPoP challenge', async () => {
    const d = await run(req('/v1/bound', { authorization: `Bearer ${JWT}` }), identity());
    expect(d).toMatchObject({ status: 401, reason: 'mtls_binding_required' });
    expect(challenge(d)).toBe('Bearer realm="api", error="invalid_token"');
  });

  it('a malformed DPoP authorization (400) carries its error on the DPoP challenge', async () => {
    const d = await run(req('/v1/orders', { authorization: 'DPoP a b' }), identity());
    expect(d).toMatchObject({ status: 400, reason: 'dpop_token_syntax' });
    expect(challenge(d)).toBe(
      'DPoP realm="api", error="invalid_request", error_description="The request is malformed", algs="ES256 EdDSA", Bearer realm="api"',
    );
  });
});
