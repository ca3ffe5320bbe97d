// Hostile JWTs through the real gRPC server, against JWKS endpoints the test controls.
// Every case asserts the exact status, WWW-Authenticate and reason, and that nothing reached the
// upstream; a listener named by jku/x5u must see zero requests; tokens never appear in logs.
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEnvoy, envoyCheckRequest } from '../support/envoy.ts';
import { startService, type TestService } from '../support/service.ts';
import {
  b64bytes,
  makeKey,
  nowSeconds,
  signInput,
  signRaw,
  startJwksServer,
  startTrap,
  unsigned,
  type JwksServer,
  type TestKey,
} from './helpers.ts';

const ISS_A = 'https://issuer-a.test';
const ISS_B = 'https://issuer-b.test';
const ISS_C = 'https://issuer-c.test';
const AUD = 'https://api.example.com';
const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';

let svc: TestService;
let jwksA: JwksServer;
let jwksB: JwksServer;
let jwksC: JwksServer;
let rsaC: TestKey;
let trap: Awaited<ReturnType<typeof startTrap>>;
let rsa: TestKey;
let ec: TestKey;
let keyB: TestKey;
let attacker: TestKey;
const presented: string[] = [];

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return {
    iss: ISS_A,
    aud: AUD,
    sub: 'user-1',
    client_id: 'client-1',
    scope: 'orders:read',
    iat: now,
    exp: now + 300,
    jti: randomUUID(),
    ...over,
  };
}

function sign(over: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: TestKey = rsa): string {
  return signRaw({ alg: key.alg, typ: 'at+jwt', kid: key.kid, ...header }, claims(over), key.privateKey, key.alg);
}

async function ask(token: string, init: { method?: string; path?: string } = {}) {
  presented.push(token);
  const out = await svc.envoy({
    method: init.method ?? 'GET',
    path: init.path ?? '/v1/orders',
    headers: { authorization: `Bearer ${token}` },
  });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
}

async function expectInvalid(token: string, reason: string, init?: { method?: string; path?: string }) {
  const out = await ask(token, init);
  expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
    status: 401,
    challenge: INVALID,
    reason,
  });
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
  [rsa, ec, keyB, attacker] = await Promise.all([
    makeKey('rsa-1', 'RS256'),
    makeKey('ec-1', 'ES256'),
    makeKey('b-1', 'RS256'),
    makeKey('rsa-1', 'RS256'),
  ]);
  jwksA = await startJwksServer([rsa.publicJwk, ec.publicJwk]);
  jwksB = await startJwksServer([keyB.publicJwk]);
  // Issuer C allows two RSA algorithms: its key without `alg` may verify only the first (PS256),
  // the same key published again with `alg: RS256` only RS256.
  rsaC = await makeKey('c-noalg', 'RS256');
  jwksC = await startJwksServer([rsaC.publicJwk, { ...rsaC.publicJwk, kid: 'c-rs256', alg: 'RS256' }]);
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
      # A provider that names the client in azp instead of client_id (RFC 9068 §2.2 relaxed).
      required_claims: [sub, iat, jti]
      jwks_refresh_seconds: 0
      jwks_cooldown_seconds: 1
      fetch_timeout_ms: 2000
    - issuer: ${ISS_C}
      audiences: [${AUD}]
      jwks_uri: ${jwksC.url}
      allow_http: true
      algorithms: [PS256, RS256]
      # RFC 9068's claims plus one of this provider's own.
      required_claims: [sub, client_id, iat, jti, tid]
      jwks_refresh_seconds: 0
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
  await Promise.all([jwksA?.close(), jwksB?.close(), jwksC?.close(), trap?.close()]);
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

  it('client id falls back to azp where required_claims allows it; scp arrays for an issuer configured with scope_claim: scp', async () => {
    const out = await expectAllowed(
      sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'], client_id: undefined, azp: 'client-azp' }, {}, keyB),
    );
    expect(out.upstreamHeaders['x-client-id']).toBe('client-azp');
    const b = await expectAllowed(
      sign({ iss: ISS_B, scope: undefined, scp: ['orders:read', 'orders:write'] }, {}, keyB),
    );
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
        const sig = createHmac(`sha${alg.slice(2)}`, secret)
          .update(input)
          .digest('base64url');
        await expectInvalid(`${input}.${sig}`, 'jwt_alg_hmac');
      }
    }
  });

  it('refuses a key embedded in the token (jwk, x5c) even when it verifies the signature', async () => {
    await expectInvalid(sign({}, { jwk: attacker.publicJwk }, attacker), 'jwt_header_key_reference');
    await expectInvalid(
      sign({}, { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }, attacker),
      'jwt_header_key_reference',
    );
  });

  it('never fetches jku / x5u: the named listener sees zero requests', async () => {
    await expectInvalid(sign({}, { jku: `${trap.url}/jwks.json` }, attacker), 'jwt_header_key_reference');
    await expectInvalid(sign({}, { x5u: `${trap.url}/cert.pem` }, attacker), 'jwt_header_key_reference');
    await expectInvalid(
      sign({}, { jku: `${trap.url}/jwks.json`, kid: 'attacker-kid' }, attacker),
      'jwt_header_key_reference',
    );
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
    await expectInvalid(
      signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'rsa-1' }, claims(), ec.privateKey, 'ES256'),
      'jwt_key_alg_mismatch',
    );
  });

  it("keys serve only their own issuer: iss B with A's kid and signature is refused", async () => {
    await expectInvalid(sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'] }), 'jwt_kid_unknown');
  });

  it('refuses crit, nested JWTs (cty), b64 and encrypted (JWE) tokens', async () => {
    await expectInvalid(sign({}, { crit: ['exp'] }), 'jwt_crit_unsupported');
    await expectInvalid(sign({}, { cty: 'JWT' }), 'jwt_nested_unsupported');
    await expectInvalid(sign({}, { b64: false }), 'jwt_b64_unsupported');
    await expectInvalid(
      'eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn',
      'jwt_encrypted_unsupported',
    );
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

const SEXTETS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The same bytes spelled differently: the last character's unused low bits set. */
function withUnusedBits(segment: string): string {
  const rest = segment.length % 4;
  if (rest !== 2 && rest !== 3) throw new Error(`segment of length ${segment.length} has no unused bits`);
  const v = SEXTETS.indexOf(segment.at(-1)!);
  return segment.slice(0, -1) + SEXTETS[v | 1];
}

/** A payload segment that is not a multiple of 4 characters long and contains `-` or `_`, for the spelling tests. */
function awkwardPayload(over: Record<string, unknown> = {}): string {
  for (let n = 0; ; n++) {
    const seg = Buffer.from(JSON.stringify(claims({ note: `~?>${'x'.repeat(n)}`, ...over }))).toString('base64url');
    if (seg.length % 4 >= 2 && /[-_]/.test(seg)) return seg;
  }
}

const HEADER_A = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'rsa-1' })).toString('base64url');

/** Signs a payload given as raw bytes (invalid UTF-8 allowed), with issuer A's RSA key. */
function signBytes(payload: Buffer, header = HEADER_A): string {
  return signInput(`${header}.${b64bytes(payload)}`, rsa.privateKey, 'RS256');
}

/** A valid claims set as JSON text with `raw` spliced in as the value of "note" (or another claim). */
function jsonWith(raw: Buffer | string, claim = 'note', over: Record<string, unknown> = {}): Buffer {
  const [before, after] = JSON.stringify(claims({ [claim]: '\u0000MARK\u0000', ...over })).split('\\u0000MARK\\u0000');
  return Buffer.concat([Buffer.from(before), Buffer.from(raw), Buffer.from(after)]);
}

describe('one token, one spelling: canonical base64url, valid UTF-8 (RFC 7515 §2, RFC 8259 §8.1)', () => {
  const verifiedHits = async () => {
    const text = await (await fetch(`${svc.httpBase}/metrics`)).text();
    return Number(text.match(/portcullis_jwt_cache_lookups_total\{cache="verified",result="hit"\} (\d+)/)?.[1] ?? 0);
  };

  it('a signature whose last character has unused bits set is refused and never meets the cached verdict of the real token', async () => {
    for (const key of [rsa, ec]) {
      const good = sign({}, {}, key);
      await expectAllowed(good);
      await expectAllowed(good); // now in the verified cache
      const [h, p, sig] = good.split('.');
      const variant = `${h}.${p}.${withUnusedBits(sig)}`;
      // The premise: the same signature bytes, another string.
      expect(Buffer.from(variant.split('.')[2], 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
      const hits = await verifiedHits();
      await expectInvalid(variant, 'jwt_base64_invalid');
      await expectInvalid(variant, 'jwt_base64_invalid');
      expect(await verifiedHits()).toBe(hits);
      await expectAllowed(good);
    }
  });

  it('header and payload spelled non-canonically are refused even when validly signed as spelled', async () => {
    const p = awkwardPayload();
    await expectAllowed(signInput(`${HEADER_A}.${p}`, rsa.privateKey, 'RS256')); // control
    const header =
      HEADER_A.length % 4 >= 2
        ? HEADER_A
        : Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'rsa-1', x: 1 })).toString('base64url');
    const pad = (seg: string) => seg + '='.repeat((4 - (seg.length % 4)) % 4);
    const base64 = (seg: string) => seg.replaceAll('-', '+').replaceAll('_', '/');
    for (const input of [
      `${HEADER_A}.${withUnusedBits(p)}`, // unused bits
      `${HEADER_A}.${base64(p)}`, // the base64 alphabet
      `${withUnusedBits(header)}.${p}`,
      `${HEADER_A}.${p.slice(0, 5)}~${p.slice(5)}`, // a b64token character outside base64url (Node's decoder skips it)
      `${HEADER_A}.${p}${'A'.repeat((5 - (p.length % 4)) % 4)}`, // a length no base64 has (4n + 1)
    ]) {
      await expectInvalid(signInput(input, rsa.privateKey, 'RS256'), 'jwt_base64_invalid');
    }
    // Padding inside the token is not even RFC 6750 token syntax (`=` only at the end): 400.
    for (const input of [`${HEADER_A}.${pad(p)}`, `${pad(header)}.${p}`]) {
      const out = await ask(signInput(input, rsa.privateKey, 'RS256'));
      expect({ status: out.status, reason: out.reason }).toEqual({ status: 400, reason: 'bearer_syntax' });
    }
  });

  it('invalid UTF-8 in a validly signed payload is refused: overlong forms, surrogates, stray and truncated bytes', async () => {
    await expectAllowed(signBytes(jsonWith('grüße ✓ 😀'))); // control: real multi-byte UTF-8
    const members: number[][] = [
      [0xc0, 0xaf], // overlong "/"
      [0xc1, 0xbf],
      [0xe0, 0x80, 0xaf], // overlong, 3 bytes
      [0xf0, 0x80, 0x80, 0xaf], // overlong, 4 bytes
      [0xed, 0xa0, 0x80], // an encoded surrogate (CESU-8)
      [0x80], // a continuation byte alone
      [0xff],
      [0xe2, 0x82], // truncated sequence
      [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
      [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
    ];
    for (const bytes of members) {
      await expectInvalid(signBytes(jsonWith(Buffer.from(bytes))), 'jwt_utf8_invalid');
      await expectInvalid(signBytes(jsonWith(Buffer.from([0x75, ...bytes]), 'sub')), 'jwt_utf8_invalid');
    }
    // In the header, too.
    const header = Buffer.concat([
      Buffer.from('{"alg":"RS256","typ":"at+jwt","kid":"rsa-1","x":"'),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('"}'),
    ]);
    await expectInvalid(signBytes(Buffer.from(JSON.stringify(claims())), b64bytes(header)), 'jwt_utf8_invalid');
  });

  it('a lone surrogate escape anywhere in the payload is refused; a surrogate pair passes', async () => {
    await expectAllowed(signBytes(jsonWith('\\ud83d\\ude00'))); // control: an escaped pair is one character
    for (const [raw, claim] of [
      ['\\ud800', 'sub'],
      ['\\udfff', 'note'],
      ['x\\uDBFFy', 'note'],
      ['\\ude00\\ud83d', 'note'], // a pair in the wrong order
    ]) {
      await expectInvalid(signBytes(jsonWith(raw, claim)), 'jwt_utf8_invalid');
    }
    // As a key, and deep in a structure.
    await expectInvalid(
      signBytes(Buffer.from(JSON.stringify(claims()).replace('{', '{"\\ud800":1,'))),
      'jwt_utf8_invalid',
    );
    await expectInvalid(
      signBytes(Buffer.from(JSON.stringify(claims()).replace('{', '{"ext":[{"a":["\\udc00"]}],'))),
      'jwt_utf8_invalid',
    );
  });
});

describe('typ compared exactly: ASCII case-insensitive, application/ optional, nothing else', () => {
  it('refuses whitespace, parameters, a doubled prefix, control and look-alike characters; any ASCII case passes', async () => {
    for (const typ of ['AT+JWT', 'At+Jwt', 'Application/At+Jwt', 'APPLICATION/AT+JWT'])
      await expectAllowed(sign({}, { typ }));
    for (const typ of [
      'at+jwt ',
      ' at+jwt',
      'at+jwt\t',
      'at+jwt\n',
      'at+jwt\u0000',
      'at+jwt\u200b',
      'application/at+jwt; charset=utf-8',
      'application/application/at+jwt',
      'application /at+jwt',
      'x-application/at+jwt',
      'application/',
      'аt+jwt', // Cyrillic а
      'at+jwt+jwt',
      '',
    ]) {
      await expectInvalid(sign({}, { typ }), 'jwt_typ_not_allowed');
    }
  });
});

describe('RFC 9068 §2.2 required claims (sub, client_id, iat, jti), relaxable per issuer', () => {
  it('refuses a token without any one of them', async () => {
    for (const c of ['sub', 'client_id', 'iat', 'jti'])
      await expectInvalid(sign({ [c]: undefined }), `jwt_${c}_missing`);
    for (const c of ['sub', 'client_id', 'jti']) await expectInvalid(sign({ [c]: null }), `jwt_${c}_missing`);
    await expectInvalid(sign({ iat: null }), 'jwt_iat_invalid');
  });

  it('refuses them empty or of the wrong type', async () => {
    for (const over of [
      { jti: 42 },
      { jti: '' },
      { jti: ['a'] },
      { client_id: '' },
      { client_id: 7 },
      { sub: '' },
      { sub: { id: 1 } },
    ]) {
      await expectInvalid(sign(over), 'jwt_claim_type_invalid');
    }
  });

  it('an issuer relaxed with required_claims accepts what it no longer requires, and requires what it adds', async () => {
    // Issuer B does not require client_id.
    const b = await expectAllowed(
      sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'], client_id: undefined }, {}, keyB),
    );
    expect(b.upstreamHeaders['x-client-id']).toBeUndefined();
    await expectInvalid(
      sign({ iss: ISS_B, scope: undefined, scp: ['orders:read'], jti: undefined }, {}, keyB),
      'jwt_jti_missing',
    );
    // Issuer C also requires its own tid.
    const c = (over: Record<string, unknown>) =>
      signInput(
        `${Buffer.from(JSON.stringify({ alg: 'PS256', typ: 'at+jwt', kid: 'c-noalg' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims({ iss: ISS_C, ...over }))).toString('base64url')}`,
        rsaC.privateKey,
        'PS256',
      );
    await expectAllowed(c({ tid: 'tenant-1' }));
    await expectInvalid(c({}), 'jwt_required_claim_missing');
    await expectInvalid(c({ tid: null }), 'jwt_required_claim_missing');
    await expectInvalid(c({ tid: 'tenant-1', sub: undefined }), 'jwt_sub_missing');
  });
});

describe('one key, one algorithm (RFC 8725 §3.1)', () => {
  const forC = (alg: 'PS256' | 'RS256', kid: string) =>
    signInput(
      `${Buffer.from(JSON.stringify({ alg, typ: 'at+jwt', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims({ iss: ISS_C, tid: 't' }))).toString('base64url')}`,
      rsaC.privateKey,
      alg,
    );

  it("a key without alg verifies only the first algorithm of its type in the issuer's list; a key with alg only that one", async () => {
    await expectAllowed(forC('PS256', 'c-noalg'));
    await expectInvalid(forC('RS256', 'c-noalg'), 'jwt_key_alg_mismatch');
    await expectAllowed(forC('RS256', 'c-rs256'));
    await expectInvalid(forC('PS256', 'c-rs256'), 'jwt_key_alg_mismatch');
  });
});

describe('unknown kid floods', () => {
  it('a flood of unknown kids triggers one JWKS fetch per cooldown, shared by concurrent misses', async () => {
    const before = jwksA.hits;
    const flood = Array.from({ length: 40 }, (_, i) => sign({}, { kid: `flood-${i}-${randomUUID()}` }, attacker));
    const outs = await Promise.all(flood.map((t) => ask(t)));
    for (const o of outs) {
      expect({ status: o.status, challenge: o.clientHeaders['www-authenticate'], reason: o.reason }).toEqual({
        status: 401,
        challenge: INVALID,
        reason: 'jwt_kid_unknown',
      });
    }
    expect(jwksA.hits - before).toBe(1);
    // Still inside the 30 s cooldown: another wave fetches nothing.
    const again = await Promise.all(
      Array.from({ length: 20 }, () => ask(sign({}, { kid: `again-${randomUUID()}` }, attacker))),
    );
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
    expect({
      status: out.status,
      reason: res.dynamic_metadata?.fields?.reason?.stringValue,
      retry: out.clientHeaders['retry-after'],
    }).toEqual({
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
    expect(metrics).toMatch(
      new RegExp(
        `portcullis_jwks_fetches_total\\{issuer="${ISS_B.replaceAll('.', '\\.')}",trigger="unknown_kid",result="failure"\\} [1-9]`,
      ),
    );
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
    await expectInvalid(
      signRaw({ alg: 'RS256', typ: 'at+jwt', kid: 'rsa-1' }, raw, rsa.privateKey, 'RS256'),
      'jwt_exp_invalid',
    );
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
    for (const scope of [
      'orders:read-lite',
      'orders:readx',
      'ORDERS:READ',
      'orders',
      'xorders:read',
      'orders:read-lite orders:write',
    ]) {
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
    await expectInvalid(
      sign({ iss: ISS_B, scope: undefined, scp: 'orders:read' }, {}, keyB),
      'jwt_scope_claim_invalid',
    );
    await expectInvalid(
      sign({ iss: ISS_B, scope: undefined, scp: ['orders:read', 5] }, {}, keyB),
      'jwt_scope_claim_invalid',
    );
    await expectInvalid(sign({ scope: 'orders:read "quoted"' }), 'jwt_scope_claim_invalid');
    await expectInvalid(sign({ sub: 42 }), 'jwt_claim_type_invalid');
  });

  it('refuses oversized tokens before any parsing', async () => {
    await expectInvalid(sign({ pad: 'x'.repeat(9000) }), 'credential_too_large');
  });

  it('answers 400 invalid_request for malformed Authorization headers', async () => {
    const token = sign();
    for (const headers of [
      { authorization: 'Bearer ' },
      [
        ['authorization', `Bearer ${token}`],
        ['authorization', `Bearer ${token}`],
      ] as Array<[string, string]>,
    ]) {
      const out = await svc.envoy({ method: 'GET', path: '/v1/orders', headers });
      expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'] }).toEqual({
        status: 400,
        challenge: 'Bearer realm="api.example.com", error="invalid_request"',
      });
    }
  });
});

describe('caches', () => {
  const metric = async (cache: string, result: string) => {
    const text = await (await fetch(`${svc.httpBase}/metrics`)).text();
    const m = text.match(
      new RegExp(`portcullis_jwt_cache_lookups_total\\{cache="${cache}",result="${result}"\\} (\\d+)`),
    );
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

  it("a kid's key is used only with the algorithm of its type: RS256 under the EC kid is refused", async () => {
    await expectInvalid(sign({}, { kid: 'ec-1' }, rsa), 'jwt_key_alg_mismatch');
  });
});
