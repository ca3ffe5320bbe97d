// DPoP where it meets the other route options, over gRPC with Envoy's protos against the running
// service: a protected resource's challenge names its metadata in the DPoP challenge too
// (RFC 9728 §5.1 with RFC 9449 §7.1), a `when` condition reads identity.bound, and a shadow route
// records a failed proof without setting identity headers from it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeKey } from '../jwt/helpers.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';
import { accessToken, craftProof, outcome, proofKey, type ProofKey } from './helpers.ts';

const ISS = 'https://idp.dpop-policy.test';
const RESOURCE = 'https://api.example.com';
const METADATA = 'https://api.example.com/.well-known/oauth-protected-resource';

let svc: TestService;
let client: ProofKey;
let issuer: Parameters<typeof accessToken>[0];
let bound: string;
let unbound: string;
const secrets: string[] = [];

beforeAll(async () => {
  const key = await makeKey('dpop-policy-1', 'ES256');
  issuer = { iss: ISS, aud: RESOURCE, key };
  client = await proofKey();
  bound = accessToken(issuer, { cnf: { jkt: client.jkt } });
  unbound = accessToken(issuer);
  secrets.push(bound, unbound);
  const dir = tempDir();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [key.publicJwk] }));
  svc = await startService(
    `
realm: api.example.com
headers:
  set: { x-user-id: subject, x-auth-method: method }
credentials:
  jwt:
    - { issuer: "${ISS}", audiences: ["${RESOURCE}"], jwks_file: jwks.json, algorithms: [ES256] }
  dpop: { max_age_seconds: 60, algorithms: [ES256] }
protected_resources:
  - resource: ${RESOURCE}
    authorization_servers: ["${ISS}"]
    routes: [resource]
routes:
  - { name: resource, match: { path_prefix: /v1/resource }, auth: [jwt] }
  - name: bound-only
    match: { path_prefix: /v1/bound-only }
    auth: [jwt]
    when: [{ name: sender-constrained, expr: "has(identity.bound) && identity.bound == 'dpop'" }]
  - { name: shadowed, match: { path_prefix: /v1/shadowed }, auth: [jwt], sender_constraint: dpop, mode: shadow }
`,
    { dir },
  );
});

afterAll(async () => {
  for (const line of svc?.logs ?? []) for (const s of secrets) expect(line).not.toContain(s);
  await svc?.stop();
});

async function send(path: string, token: string, scheme: 'DPoP' | 'Bearer', proof?: string) {
  const headers: Array<[string, string]> = [['authorization', `${scheme} ${token}`]];
  if (proof !== undefined) {
    secrets.push(proof);
    headers.push(['DPoP', proof]);
  }
  return outcome(await svc.envoy({ method: 'GET', path, headers }));
}

const proofFor = (path: string) =>
  craftProof(client, { htm: 'GET', htu: `https://api.example.com${path}`, token: bound });

describe('a protected resource', () => {
  it('names its metadata in the DPoP challenge as well as the Bearer one', async () => {
    const r = await send('/v1/resource/1', bound, 'DPoP');
    expect(r.status).toBe(401);
    expect(r.reason).toBe('dpop_proof_missing');
    expect(r.error).toBe('invalid_dpop_proof');
    expect(r.challenge).toMatch(/^DPoP realm="api\.example\.com", error="invalid_dpop_proof"/);
    expect(r.challenge).toContain(', Bearer realm="api.example.com"');
    // Both schemes' parameters carry it: whichever the client reads, it finds the metadata.
    expect(r.challenge.split(`resource_metadata="${METADATA}"`).length - 1).toBe(2);
  });

  it('allows a bound token with its proof', async () => {
    const r = await send('/v1/resource/1', bound, 'DPoP', await proofFor('/v1/resource/1'));
    expect(r.status).toBe(200);
    expect(r.bound).toBe('dpop');
  });
});

describe('a condition on identity.bound', () => {
  it('refuses an unbound Bearer token: 403 condition_failed, nothing said of the condition', async () => {
    const r = await send('/v1/bound-only/1', unbound, 'Bearer');
    expect(r.status).toBe(403);
    expect(r.reason).toBe('condition_failed');
    expect(r.error).toBe('forbidden');
    expect(JSON.stringify(r)).not.toContain('sender-constrained');
  });

  it('allows the same caller proving its key', async () => {
    const r = await send('/v1/bound-only/1', bound, 'DPoP', await proofFor('/v1/bound-only/1'));
    expect(r.status).toBe(200);
    expect(r.upstream['x-user-id']).toBe('alice');
  });
});

describe('a shadow route demanding DPoP', () => {
  it('allows a Bearer token it would refuse, sets no identity from it, and records the would-be deny', async () => {
    const before = svc.logs.length;
    const r = await send('/v1/shadowed/1', unbound, 'Bearer');
    expect(r.status).toBe(200);
    expect(r.upstream['x-user-id']).toBeUndefined();
    expect(r.upstream['x-auth-method']).toBeUndefined();
    expect(r.upstream.authorization).toBeUndefined();
    const line = svc.logs.slice(before).find((l) => l.includes('"shadow":true'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ would_status: 401, would_reason: 'dpop_required' });
  });
});
