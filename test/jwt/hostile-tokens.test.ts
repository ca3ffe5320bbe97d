// Hostile JWTs through the real gRPC server, against JWKS endpoints the test controls.
// Every case asserts the exact status, WWW-Authenticate and reason, and that nothing reached the
// upstream; a listener named by jku/x5u must see zero requests; tokens never appear in logs.
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEnvoy, envoyCheckRequest } from '../support/envoy.ts';
import { startService, type TestService } from '../support/service.ts';
import { makeKey, nowSeconds, signRaw, startJwksServer, startTrap, unsigned, type JwksServer, type TestKey } from './helpers.ts';

const ISS_A = 'https://issuer-a.test';
const ISS_B = 'https://issuer-b.test';
const AUD = 'https://api.example.com';
const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';

let svc: TestService;
let jwksA: JwksServer;
let jwksB: JwksServer;
let trap: Awaited<ReturnType<typeof startTrap>>;
let rsa: TestKey;
let ec: TestKey;
let keyB: TestKey;
let attacker: TestKey;
const presented: string[] = [];

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss: ISS_A, aud: AUD, sub: 'user-1', client_id: 'client-1', scope: 'orders:read', iat: now, exp: now + 300, jti: randomUUID(), ...over };
}

function sign(over: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: TestKey = rsa): string {
  return signRaw({ alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header }, claims(over), key.privateKey, key.alg);
}

async function ask(token: string, init: { method?: string; path?: string } = {}) {
  presented.push(token);
  const out = await svc.envoy({ method: init.method ?? 'GET', path: init.path ?? '/v1/orders', headers: { authorization: `Bearer ${token}` } });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
}

async function expectInvalid(token: string, reason: string, init?: { method?: string; path?: string }) {
  const out = await ask(token, init);
  expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({ status: 401, challenge: INVALID, reason });
  expect(JSON.parse(out.body ?? '{}').error).toBe('invalid_token');
  expect(out.upstreamHeaders).toEqual({});
  return out;
}

async function expectAllowed(token: string, init?: { method?: string; path?: string }) {
  const out = await ask(token, init);
  expect({ status: out.status, reason: out.reason }).toEqual({ status: 200, reason: 'allowed' });
  return out;
}

beforeAll(async () => {
  [rsa, ec, keyB, attacker] = await Promise.all([makeKey('rsa-1', 'RS256'), makeKey('ec-1', 'ES256'), makeKey('b-1', 'RS256'), makeKey('rsa-1', 'RS256')]);
  jwksA = await startJwksServer([rsa.publicJwk, ec.publicJwk]);
  jwksB = await startJwksServer([keyB.publicJwk]);
  trap = await startTrap();
  svc = await startService(`
realm: api.example.com
credentials:
  jwt:
    - issuer: ${ISS_A}
      audiences: [${AUD}]
      jwks_uri: ${jwksA.url}
      allow_http: true
      algorithms: [RS256, ES256]
      clock_skew_seconds: 60
      max_lifetime_seconds: 3600
      jwks_refresh_seconds: 0
      jwks_cooldown_seconds: 30
    - issuer: ${ISS_B}
      audiences: [${AUD}]
      jwks_uri: ${jwksB.url}
      allow_http: true
      algorithms: [RS256]
      scope_claim: scp
      clock_skew_seconds: 0
      token_types: [at+jwt, JWT]
      jwks_refresh_seconds: 0
      jwks_cooldown_seconds: 1
      fetch_timeout_ms: 2000
routes:
  - name: orders-read
    match: { methods: [GET], path_prefix: /v1/orders }
    auth: [jwt]
    scopes: [orders:read]
  - name: orders-write
    match: { methods: [POST], path_prefix: /v1/orders }
    auth: [jwt]
    scopes: [orders:write]
`);
  const ready = await fetch(`${svc.httpBase}/readyz`);
  expect(ready.status).toBe(200);
});

afterAll(async () => {
  await svc?.stop();
  await Promise.all([jwksA?.close(), jwksB?.close(), trap?.close()]);
});

describe('valid tokens (controls: each hostile case differs from one of these in one way)', () => {
  it('accepts an RS256 at+jwt token and sets only trusted identity headers', async () => {
    const out = await expectAllowed(sign());
    expect(out.upstreamHeaders['x-user-id']).toBe('user-1');
    expect(out.upstreamHeaders['x-client-id']).toBe('client-1');
    expect(out.upstreamHeaders['x-scopes']).toBe('orders:read');
    expect(out.upstreamHeaders['x-auth-method']).toBe('jwt');
    expect(out.upstreamHeaders.authorization).toBeUndefined();
  });

  it('accepts ES256 with the EC key, typ with application/ prefix and any case, aud as an array', async () => {
    await expectAllowed(sign({}, {}, ec));
    await expectAllowed(sign({}, { typ: 'application/at+jwt' }));
    await expectAllowed(sign({}, { typ: 'AT+JWT' }));
    await expectAllowed(sign({ aud: ['https://other.example.com', AUD] }));
  });

  it('honours the clock skew for exp and nbf', async () => {
    await expectAllowed(sign({ exp: nowSeconds() - 30 }));
    await expectAllowed(sign({ nbf: nowSeconds() + 30 }));
  });

  it('client id falls back to azp; scp arrays for an issuer configured with scope_claim: scp', async () => {
    const out = await expectAllowed(sign({ client_id: undefined, azp: 'client-azp' }));
    expect(out.upstreamHeaders['x-client-id']).toBe('client-azp');
    const b = await expectAllowed(sign({ iss: ISS_B, scope: undefined, scp: ['orders:read', 'orders:write'] }, {}, keyB));
    expect(b.upstreamHeaders['x-scopes']).toBe('orders:read orders:write');
  });
});

describe('algorithms and keys named by the token', () => {
  it('refuses alg none in any casing, with or without a signature', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectInvalid(unsigned({ alg, typ: 'at+jwt' }, claims()), 'jwt_alg_none');
      await expectInvalid(unsigned({ alg, typ: 'at+jwt', kid: 'rsa-1' }, claims(), 'c2ln'), 'jwt_alg_none');
    }
  });

  it('refuses HS256 keyed with the RSA public key (PEM and JWK forms)', async () => {
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    for (const secret of [pem, JSON.stringify(rsa.publicJwk), Buffer.from(rsa.publicJwk.n!, 'base64url')]) {
      for (const alg of ['HS256', 'hs256', 'HS512']) {
        const header = { alg, typ: 'at+jwt', kid: 'rsa-1' };
        const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`;
        const sig = createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url');
        await expectInvalid(`${input}.${sig}`, 'jwt_alg_hmac');
      }
    }
  });

  it('refuses a key embedded in the token (jwk, x5c) even when it verifies the signature', async () => {
    await expectInvalid(sign({}, { jwk: attacker.publicJwk }, attacker), 'jwt_header_key_reference');
    await expectInvalid(sign({}, { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }, attacker), 'jwt_header_key_reference');
  });

  it('never fetches jku / x5u: the named listener sees zero requests', async () => {
    await expectInvalid(sign({}, { jku: `${trap.url}/jwks.json` }, attacker), 'jwt_header_key_reference');
    await expectInvalid(sign({}, { x5u: `${trap.url}/cert.pem` }, attacker), 'jwt_header_key_reference');
    await expectInvalid(sign({}, { jku: `${trap.url}/jwks.json`, kid: 'attacker-kid' }, attacker), 'jwt_header_key_reference');
    await new Promise((r) => setTimeout(r, 100));
    expect(trap.hits).toEqual([]);
  });

  it('refuses a token signed by a different key under a known kid', async () => {
    await expectInvalid(sign({}, {}, attacker), 'jwt_signature_invalid');
  });

  it('refuses an algorithm outside the issuer list, and an alg that does not fit the key', async () => {
    const rs384 = signRaw({ alg: 'RS384', typ: 'at+jwt', kid: 'rsa-1' }, claims(), rsa.privateKey, 'RS384');
    await expectInvalid(rs384, 'jwt_alg_not_allowed');
    // ES256 header naming the RSA key: the key is never used for an algorithm of another type.
    await expectInvalid(signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'rsa-1' }, claims(), ec.privateKey, 'ES256'), 'jwt_key_alg_mismatch');
  });

  it('keys serve only their own issuer: iss B with A\'s kid and signature is refused', async () => {
    await expectInvalid(sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'] }), 'jwt_kid_unknown');
  });

  it('refuses crit, nested JWTs (cty), b64 and encrypted (JWE) tokens', async () => {
    await expectInvalid(sign({}, { crit: ['exp'] }), 'jwt_crit_unsupported');
    await expectInvalid(sign({}, { cty: 'JWT' }), 'jwt_nested_unsupported');
    await expectInvalid(sign({}, { b64: false }), 'jwt_b64_unsupported');
    await expectInvalid('eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn', 'jwt_encrypted_unsupported');
  });

  it('refuses tampered payloads and garbage that looks like a JWT', async () => {
    const good = sign();
    const [h, , s] = good.split('.');
    const forged = Buffer.from(JSON.stringify(claims({ scope: 'orders:read orders:write' }))).toString('base64url');
    await expectInvalid(`${h}.${forged}.${s}`, 'jwt_signature_invalid');
    await expectInvalid('eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln', 'jwt_payload_malformed');
    await expectInvalid('bm90IGpzb24.e30.c2ln', 'jwt_header_malformed');
    await expectInvalid(`${h}.${forged}.`, 'jwt_signature_missing');
  });
});

describe('unknown kid floods', () => {
  it('a flood of unknown kids triggers one JWKS fetch per cooldown, shared by concurrent misses', async () => {
    const before = jwksA.hits;
    const flood = Array.from({ length: 40 }, (_, i) => sign({}, { kid: `flood-${i}-${randomUUID()}` }, attacker));
    const outs = await Promise.all(flood.map((t) => ask(t)));
    for (const o of outs) {
      expect({ status: o.status, challenge: o.clientHeaders['www-authenticate'], reason: o.reason }).toEqual({ status: 401, challenge: INVALID, reason: 'jwt_kid_unknown' });
    }
    expect(jwksA.hits - before).toBe(1);
    // Still inside the 30 s cooldown: another wave fetches nothing.
    const again = await Promise.all(Array.from({ length: 20 }, () => ask(sign({}, { kid: `again-${randomUUID()}` }, attacker))));
    expect(again.every((o) => o.status === 401)).toBe(true);
    expect(jwksA.hits - before).toBe(1);
  });

  it('a refetch slower than the wait budget never holds a Check: 503 within ~100 ms, then the new key works', async () => {
    const newKey = await makeKey('b-2', 'RS256');
    jwksB.keys = [keyB.publicJwk, newKey.publicJwk];
    jwksB.latencyMs = 600;
    await new Promise((r) => setTimeout(r, 1100)); // past issuer B's 1 s cooldown
    const t = sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'] }, {}, newKey);
    // Sent with Envoy's default 200 ms deadline: an answer after it would be DEADLINE_EXCEEDED.
    const req = envoyCheckRequest({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${t}` } });
    const started = performance.now();
    const res = await svc.checkRaw(req, 200);
    const elapsed = performance.now() - started;
    const out = applyEnvoy(req, res);
    expect({ status: out.status, reason: res.dynamic_metadata?.fields?.reason?.stringValue, retry: out.clientHeaders['retry-after'] }).toEqual({
      status: 503,
      reason: 'jwks_refresh_pending',
      retry: '1',
    });
    expect(out.clientHeaders['www-authenticate']).toBeUndefined();
    expect(elapsed).toBeGreaterThanOrEqual(95); // it did wait for the refetch, up to the budget
    // The fetch finished in the background; the same token now passes.
    await new Promise((r) => setTimeout(r, 700));
    jwksB.latencyMs = 0;
    await expectAllowed(t);
  });

  it('while issuer B is unreachable, known keys keep serving and unknown kids answer 503', async () => {
    jwksB.failWith = 500;
    await new Promise((r) => setTimeout(r, 1100)); // past the cooldown
    const unknown = sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'] }, { kid: 'b-unknown' }, attacker);
    const out = await ask(unknown);
    expect({ status: out.status, reason: out.reason }).toEqual({ status: 503, reason: 'jwks_unavailable' });
    await expectAllowed(sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'] }, {}, keyB));
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toContain(`portcullis_jwks_stale{issuer="${ISS_B}"} 1`);
    expect(metrics).toMatch(new RegExp(`portcullis_jwks_fetches_total\\{issuer="${ISS_B.replaceAll('.', '\\.')}",trigger="unknown_kid",result="failure"\\} [1-9]`));
    expect(svc.logs.some((l) => l.includes('JWKS refresh failed: the last good keys keep serving'))).toBe(true);
    jwksB.failWith = 0;
  });
});

describe('time claims', () => {
  it('refuses expired, not-yet-valid and issued-in-the-future tokens', async () => {
    await expectInvalid(sign({ exp: nowSeconds() - 120 }), 'jwt_expired');
    await expectInvalid(sign({ nbf: nowSeconds() + 300 }), 'jwt_not_yet_valid');
    await expectInvalid(sign({ iat: nowSeconds() + 300, exp: nowSeconds() + 600 }), 'jwt_issued_in_future');
  });

  it('refuses far-future exp, with or without iat, and lifetimes over the maximum', async () => {
    await expectInvalid(sign({ exp: nowSeconds() + 10 * 365 * 86400 }), 'jwt_lifetime_too_long');
    await expectInvalid(sign({ iat: undefined, exp: nowSeconds() + 7200 }), 'jwt_lifetime_too_long');
    await expectInvalid(sign({ iat: nowSeconds() - 3000, exp: nowSeconds() + 1000 }), 'jwt_lifetime_too_long');
  });

  it('refuses a missing, string, null or infinite exp', async () => {
    await expectInvalid(sign({ exp: undefined }), 'jwt_exp_missing');
    await expectInvalid(sign({ exp: String(nowSeconds() + 300) }), 'jwt_exp_invalid');
    await expectInvalid(sign({ exp: null }), 'jwt_exp_invalid');
    // JSON 1e999 parses to Infinity: a token that would never expire.
    const raw = JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1e999');
    await expectInvalid(signRaw({ alg: 'RS256', typ: 'at+jwt', kid: 'rsa-1' }, raw, rsa.privateKey, 'RS256'), 'jwt_exp_invalid');
    await expectInvalid(sign({ nbf: 'yesterday' }), 'jwt_nbf_invalid');
  });
});

describe('issuer, audience, type', () => {
  it('refuses an unknown or missing iss, and a near-miss of a configured one', async () => {
    await expectInvalid(sign({ iss: 'https://evil.example.com' }), 'jwt_issuer_unknown');
    await expectInvalid(sign({ iss: undefined }), 'jwt_issuer_unknown');
    await expectInvalid(sign({ iss: `${ISS_A}/` }), 'jwt_issuer_unknown');
    await expectInvalid(sign({ iss: ISS_A.toUpperCase() }), 'jwt_issuer_unknown');
  });

  it('refuses a wrong, missing or ill-typed aud', async () => {
    await expectInvalid(sign({ aud: 'https://other.example.com' }), 'jwt_audience_mismatch');
    await expectInvalid(sign({ aud: undefined }), 'jwt_audience_missing');
    await expectInvalid(sign({ aud: [AUD, 7] }), 'jwt_audience_invalid');
  });

  it('refuses a wrong or missing typ', async () => {
    await expectInvalid(sign({}, { typ: 'JWT' }), 'jwt_typ_not_allowed');
    await expectInvalid(sign({}, { typ: 'application/jwt' }), 'jwt_typ_not_allowed');
    await expectInvalid(sign({}, { typ: undefined }), 'jwt_typ_missing');
    await expectInvalid(sign({}, { typ: 7 }), 'jwt_typ_invalid');
  });

  it('refuses ID tokens, even from an issuer that allows typ JWT', async () => {
    const idToken = { aud: 'client-1', nonce: 'n-0S6_WzA2Mj', auth_time: nowSeconds() - 10, scope: undefined };
    await expectInvalid(sign(idToken, { typ: 'JWT' }), 'jwt_typ_not_allowed');
    await expectInvalid(sign({ iss: ISS_B, ...idToken, aud: AUD }, { typ: 'JWT' }, keyB), 'jwt_id_token');
    await expectInvalid(sign({ iss: ISS_B, at_hash: 'x', aud: AUD }, { typ: 'JWT' }, keyB), 'jwt_id_token');
  });
});

describe('scopes and size', () => {
  it('matches whole scope tokens, case-sensitively: substrings and look-alikes get 403 insufficient_scope', async () => {
    for (const scope of ['orders:read-lite', 'orders:readx', 'ORDERS:READ', 'orders', 'xorders:read', 'orders:read-lite orders:write']) {
      const out = await ask(sign({ scope }));
      expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
        status: 403,
        challenge: 'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:read"',
        reason: 'scope_missing',
      });
      expect(out.upstreamHeaders).toEqual({});
    }
    const write = await ask(sign({ scope: 'orders:read' }), { method: 'POST' });
    expect({ status: write.status, challenge: write.clientHeaders['www-authenticate'] }).toEqual({
      status: 403,
      challenge: 'Bearer realm="api.example.com", error="insufficient_scope", scope="orders:write"',
    });
  });

  it('type-checks the scope claim: scope must be a string, scp an array of strings', async () => {
    await expectInvalid(sign({ scope: ['orders:read'] }), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ scope: 7 }), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ iss: ISS_B, scope: undefined, scp: 'orders:read' }, {}, keyB), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ iss: ISS_B, scope: undefined, scp: ['orders:read', 5] }, {}, keyB), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ scope: 'orders:read "quoted"' }), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ sub: 42 }), 'jwt_claim_type_invalid');
  });

  it('refuses oversized tokens before any parsing', async () => {
    await expectInvalid(sign({ pad: 'x'.repeat(9000) }), 'credential_too_large');
  });

  it('answers 400 invalid_request for malformed Authorization headers', async () => {
    const token = sign();
    for (const headers of [{ authorization: 'Bearer ' }, [['authorization', `Bearer ${token}`], ['authorization', `Bearer ${token}`]] as Array<[string, string]>]) {
      const out = await svc.envoy({ method: 'GET', path: '/v1/orders', headers });
      expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'] }).toEqual({ status: 400, challenge: 'Bearer realm="api.example.com", error="invalid_request"' });
    }
  });
});

describe('caches', () => {
  const metric = async (cache: string, result: string) => {
    const text = await (await fetch(`${svc.httpBase}/metrics`)).text();
    const m = text.match(new RegExp(`portcullis_jwt_cache_lookups_total\\{cache="${cache}",result="${result}"\\} (\\d+)`));
    return m ? Number(m[1]) : 0;
  };
  it('a repeated valid token is served from the verified cache; a repeated bad one from the rejection cache', async () => {
    const good = sign();
    await expectAllowed(good);
    const hits = await metric('verified', 'hit');
    for (let i = 0; i < 5; i++) await expectAllowed(good);
    expect((await metric('verified', 'hit')) - hits).toBe(5);

    const bad = sign({ exp: nowSeconds() - 600 });
    await expectInvalid(bad, 'jwt_expired');
    const rejected = await metric('rejected', 'hit');
    for (let i = 0; i < 3; i++) await expectInvalid(bad, 'jwt_expired');
    expect((await metric('rejected', 'hit')) - rejected).toBe(3);
  });

  it('a cached token stops passing once its exp is reached (no cached decision outlives exp)', async () => {
    // Issuer B has no clock skew: the token is valid for 2-3 s and cached until exactly then.
    const t = sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'], exp: nowSeconds() + 3 }, {}, keyB);
    await expectAllowed(t);
    const hits = await metric('verified', 'hit');
    await expectAllowed(t);
    expect((await metric('verified', 'hit')) - hits).toBe(1);
    await new Promise((r) => setTimeout(r, 3100));
    await expectInvalid(t, 'jwt_expired');
  });
});

describe('hygiene', () => {
  it('never logs a token, and deny bodies say nothing internal', async () => {
    const all = svc.logs.join('\n');
    for (const t of presented) {
      expect(all.includes(t)).toBe(false);
      // Not even the signature part on its own.
      const sig = t.split('.')[2];
      if (sig && sig.length > 20) expect(all.includes(sig)).toBe(false);
    }
    const out = await ask(sign({ exp: nowSeconds() - 600 }));
    expect(JSON.parse(out.body!)).toEqual({ error: 'invalid_token', error_description: 'The credential is invalid' });
  });

  it('a kid\'s key is used only with the algorithm of its type: RS256 under the EC kid is refused', async () => {
    await expectInvalid(sign({}, { kid: 'ec-1' }, rsa), 'jwt_key_alg_mismatch');
  });
});
