// DPoP proof verification, one test per rule of RFC 9449, §4.3 and the key binding (RFC 9449, §6, §7.1):
// proofs made the way a real client makes them (panva's `dpop` package) and hostile ones crafted
// with jose (alg none, HMAC, a private jwk, a wrong key, stale and future iat, two headers, an
// oversized proof, a proof for another token). Every refusal asserts its reason and the challenge
// error. Also: htu reconstruction and normalization, stateless nonces, the in-memory replay cache,
// and which binding a token and route demand.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as dpop from 'dpop';
import { base64url, calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { planBinding, readConfirmation } from '../../src/credentials/pop/binding.ts';
import {
  accessTokenHash,
  checkDpopReplay,
  dpopChallenge,
  verifyDpopProof,
  type DpopPolicy,
  type DpopRequest,
  type DpopResult,
} from '../../src/credentials/pop/dpop.ts';
import { compileHtuOrigins, normalizeHtu, parseExternalOrigin, requestHtu } from '../../src/credentials/pop/htu.ts';
import { DpopNonces } from '../../src/credentials/pop/nonce.ts';
import { POP_REASONS } from '../../src/credentials/pop/reasons.ts';
import { MemoryReplayCache, replayKey } from '../../src/stores/replay-cache.ts';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const HTU = 'https://api.example.com/v1/orders';
const POLICY: DpopPolicy = {
  algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA', 'Ed25519'],
  maxAgeSeconds: 60,
  clockSkewSeconds: 5,
};

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let es256: KeyPair;
let es256Jwk: JWK;
let es256Jkt: string;
let other: KeyPair;

beforeAll(async () => {
  es256 = await generateKeyPair('ES256', { extractable: true });
  es256Jwk = await exportJWK(es256.publicKey);
  es256Jkt = await calculateJwkThumbprint(es256Jwk);
  other = await generateKeyPair('ES256', { extractable: true });
});

const nowS = () => Math.floor(Date.now() / 1000);
const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));

/** A proof signed with jose: any header and claims, signed by `key` (default the ES256 key). */
async function craft(
  opts: { header?: Record<string, unknown>; claims?: Record<string, unknown>; key?: KeyPair; omit?: string[] } = {},
): Promise<string> {
  const key = opts.key ?? es256;
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey), ...opts.header };
  const claims: Record<string, unknown> = {
    jti: randomBytes(16).toString('base64url'),
    htm: 'POST',
    htu: HTU,
    iat: nowS(),
    ath: accessTokenHash(TOKEN),
    ...opts.claims,
  };
  for (const k of opts.omit ?? []) delete claims[k];
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(key.privateKey);
}

/** Signs any header with the ES256 key, bypassing jose's header checks (crit, a missing alg). */
async function rawSign(header: Record<string, unknown>, claims?: Record<string, unknown>): Promise<string> {
  const input = `${b64json({ typ: 'dpop+jwt', alg: 'ES256', jwk: es256Jwk, ...header })}.${b64json(claims ?? { jti: randomBytes(8).toString('hex'), htm: 'POST', htu: HTU, iat: nowS(), ath: accessTokenHash(TOKEN) })}`;
  const sig = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    es256.privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

const request = (proof: DpopRequest['proof'], over: Partial<DpopRequest> = {}): DpopRequest => ({
  proof,
  method: 'POST',
  htu: normalizeHtu(HTU),
  accessToken: TOKEN,
  cnfJkt: es256Jkt,
  ...over,
});

async function refused(result: Promise<DpopResult> | DpopResult): Promise<{ reason: string; error: string }> {
  const r = await result;
  if (r.ok) throw new Error('expected a refusal, got ok');
  return { reason: r.reason, error: r.error };
}
const invalidProof = (reason: string) => ({ reason, error: 'invalid_dpop_proof' });

describe('a valid proof', () => {
  it.each(['ES256', 'Ed25519', 'RS256', 'PS256'] as const)(
    'made by the dpop package with %s passes; jkt is the RFC 7638 thumbprint',
    async (alg) => {
      const kp = await dpop.generateKeyPair(alg);
      const jkt = await dpop.calculateThumbprint(kp.publicKey);
      const proof = await dpop.generateProof(kp, HTU, 'POST', undefined, TOKEN);
      const r = await verifyDpopProof(request(proof, { cnfJkt: jkt }), POLICY);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.jkt).toBe(jkt);
      const header = JSON.parse(Buffer.from(proof.split('.')[0], 'base64url').toString());
      expect(r.jkt).toBe(await calculateJwkThumbprint(header.jwk));
      const claims = JSON.parse(Buffer.from(proof.split('.')[1], 'base64url').toString());
      expect(r.jti).toBe(claims.jti);
      expect(r.iat).toBe(claims.iat);
      expect(r.replay).toEqual({ key: replayKey(jkt, claims.jti), expiresAtMs: (claims.iat + 65) * 1000 });
      expect(r.renewNonce).toBe(false);
    },
  );

  it('a jose-made proof passes; the EdDSA alg name is accepted for an Ed25519 key', async () => {
    expect((await verifyDpopProof(request(await craft()), POLICY)).ok).toBe(true);
    const ed = await generateKeyPair('Ed25519', { extractable: true });
    const jkt = await calculateJwkThumbprint(await exportJWK(ed.publicKey));
    const r = await verifyDpopProof(
      request(await craft({ key: ed, header: { alg: 'EdDSA' } }), { cnfJkt: jkt }),
      POLICY,
    );
    expect(r.ok).toBe(true);
  });

  it('one RSA key used with RS256 and then PS256: each proof is verified with its own alg', async () => {
    const rsa = await generateKeyPair('PS256', { extractable: true });
    const jkt = await calculateJwkThumbprint(await exportJWK(rsa.publicKey));
    const { privateKey } = rsa;
    // The same key material imported for PKCS#1 v1.5 signing.
    const pkcs1 = await crypto.subtle.importKey(
      'jwk',
      await exportJWK(privateKey),
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    const rs256 = await craft({ key: { ...rsa, privateKey: pkcs1 }, header: { alg: 'RS256' } });
    const ps256 = await craft({ key: rsa, header: { alg: 'PS256' } });
    expect((await verifyDpopProof(request(rs256, { cnfJkt: jkt }), POLICY)).ok).toBe(true);
    expect((await verifyDpopProof(request(ps256, { cnfJkt: jkt }), POLICY)).ok).toBe(true);
    // A PS256 signature presented as RS256 does not verify.
    const [, p, sig] = ps256.split('.');
    const relabeled = `${rs256.split('.')[0]}.${p}.${sig}`;
    expect(await refused(verifyDpopProof(request(relabeled, { cnfJkt: jkt }), POLICY))).toEqual(
      invalidProof('dpop_signature_invalid'),
    );
  });

  it('ath is base64url(SHA-256(token)): the RFC 9449 example', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe(
      'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
    );
  });

  it('the replay key is base64url(SHA-256(len(jkt) ":" jkt jti)) with the jti as UTF-8: replicas of every version agree', () => {
    const jkt = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
    const jti = 'e1j3V_bKic8-LAEB-ü€';
    const bytes = Buffer.concat([Buffer.from(`${jkt.length}:${jkt}`, 'ascii'), Buffer.from(jti, 'utf8')]);
    expect(replayKey(jkt, jti)).toBe(createHash('sha256').update(bytes).digest('base64url'));
    expect(replayKey(jkt, jti)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('proofs verified together (one batch per event-loop turn)', () => {
  it('concurrent proofs each get their own answer, in any mix of valid and refused', async () => {
    const proofs = await Promise.all([
      craft(),
      craft({ key: other }), // a valid proof by another key than the token is bound to
      craft({ claims: { htm: 'GET' } }),
      craft(),
      craft({ claims: { iat: nowS() - 3600 } }),
    ]);
    const forged = `${proofs[0].slice(0, proofs[0].lastIndexOf('.'))}.${proofs[3].slice(proofs[3].lastIndexOf('.') + 1)}`;
    const results = await Promise.all([...proofs, forged].map((p) => verifyDpopProof(request(p), POLICY)));
    expect(results.map((r) => (r.ok ? `ok ${r.jti}` : r.reason))).toEqual([
      `ok ${JSON.parse(Buffer.from(proofs[0].split('.')[1], 'base64url').toString()).jti}`,
      'dpop_key_mismatch',
      'dpop_htm_mismatch',
      `ok ${JSON.parse(Buffer.from(proofs[3].split('.')[1], 'base64url').toString()).jti}`,
      'dpop_iat_invalid',
      'dpop_signature_invalid',
    ]);
  });

  it('a check that throws refuses only its own proof; the others in the batch are answered as usual', async () => {
    const throwing: DpopPolicy = {
      ...POLICY,
      nonces: {
        check: () => {
          throw new Error('boom');
        },
      },
    };
    const [a, b, c] = await Promise.all([craft(), craft({ claims: { nonce: 'n' } }), craft()]);
    const results = await Promise.all([
      verifyDpopProof(request(a), POLICY),
      verifyDpopProof(request(b), throwing),
      verifyDpopProof(request(c), POLICY),
    ]);
    expect(results.map((r) => (r.ok ? 'ok' : `${r.reason}: ${r.detail}`))).toEqual([
      'ok',
      'dpop_proof_malformed: the DPoP proof could not be processed',
      'ok',
    ]);
  });

  it('a proof does not wait for a later turn: 200 concurrent ones resolve before the next timer', async () => {
    const proof = await craft();
    let timerFired = false;
    setTimeout(() => (timerFired = true), 0);
    const results = await Promise.all(Array.from({ length: 200 }, () => verifyDpopProof(request(proof), POLICY)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(timerFired).toBe(false);
  });
});

describe('exactly one proof (RFC 9449, §4.3 rules 1, 2)', () => {
  it('no DPoP header, or an empty one: dpop_proof_missing', async () => {
    expect(await refused(verifyDpopProof(request(undefined), POLICY))).toEqual(invalidProof('dpop_proof_missing'));
    expect(await refused(verifyDpopProof(request('  '), POLICY))).toEqual(invalidProof('dpop_proof_missing'));
    expect(await refused(verifyDpopProof(request([]), POLICY))).toEqual(invalidProof('dpop_proof_missing'));
  });

  it('two DPoP headers (Envoy joins them with ","; or two raw values): dpop_proof_multiple, even when both are valid', async () => {
    const a = await craft();
    const b = await craft();
    expect(await refused(verifyDpopProof(request(`${a},${b}`), POLICY))).toEqual(invalidProof('dpop_proof_multiple'));
    expect(await refused(verifyDpopProof(request(`${a}, ${a}`), POLICY))).toEqual(invalidProof('dpop_proof_multiple'));
    expect(await refused(verifyDpopProof(request([a, b]), POLICY))).toEqual(invalidProof('dpop_proof_multiple'));
    // One value in the raw form is one proof.
    expect((await verifyDpopProof(request([a]), POLICY)).ok).toBe(true);
  });

  it('an oversized proof: dpop_proof_too_large, before any parsing; the limit is configurable', async () => {
    const big = await craft({ claims: { pad: 'x'.repeat(9000) } });
    expect(big.length).toBeGreaterThan(8192);
    expect(await refused(verifyDpopProof(request(big), POLICY))).toEqual(invalidProof('dpop_proof_too_large'));
    expect((await verifyDpopProof(request(big), { ...POLICY, maxProofBytes: 16_384 })).ok).toBe(true);
  });

  it('not a compact JWS: dpop_proof_malformed', async () => {
    for (const bad of [
      'abc',
      'a.b',
      'a.b.c.d',
      'a..c',
      '!!.??.**',
      `${b64json({ typ: 'dpop+jwt' })}.%%%.sig`,
      `${base64url.encode('not json')}.${b64json({})}.c2ln`,
      `${b64json([1])}.${b64json({})}.c2ln`,
    ]) {
      expect(await refused(verifyDpopProof(request(bad), POLICY))).toEqual(invalidProof('dpop_proof_malformed'));
    }
  });

  it('a payload that is not a JSON object (signed correctly): dpop_proof_malformed', async () => {
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: es256Jwk };
    const proof = await new CompactSign(new TextEncoder().encode('[1,2]'))
      .setProtectedHeader(header)
      .sign(es256.privateKey);
    expect(await refused(verifyDpopProof(request(proof), POLICY))).toEqual(invalidProof('dpop_proof_malformed'));
  });
});

describe('the JOSE header (RFC 9449, §4.3 rules 4-7)', () => {
  it('typ other than dpop+jwt, or none: dpop_typ_invalid; application/dpop+jwt and any case are dpop+jwt', async () => {
    for (const typ of ['JWT', 'at+jwt', 'dpop', undefined, 7]) {
      expect(await refused(verifyDpopProof(request(await craft({ header: { typ } })), POLICY))).toEqual(
        invalidProof('dpop_typ_invalid'),
      );
    }
    for (const typ of ['application/dpop+jwt', 'DPoP+JWT'])
      expect((await verifyDpopProof(request(await craft({ header: { typ } })), POLICY)).ok).toBe(true);
  });

  it('alg: none, unsigned or with any signature: dpop_alg_not_allowed', async () => {
    const header = b64json({ typ: 'dpop+jwt', alg: 'none', jwk: es256Jwk });
    const payload = b64json({ jti: 'x', htm: 'POST', htu: HTU, iat: nowS(), ath: accessTokenHash(TOKEN) });
    expect(await refused(verifyDpopProof(request(`${header}.${payload}.`), POLICY))).toEqual(
      invalidProof('dpop_alg_not_allowed'),
    );
    expect(
      await refused(
        verifyDpopProof(request(`${header}.${payload}.c2ln`), {
          ...POLICY,
          algorithms: [...POLICY.algorithms, 'none'],
        }),
      ),
    ).toEqual(invalidProof('dpop_alg_not_allowed'));
  });

  it('HS256 with an oct jwk, correctly MACed, is refused even when the config lists HS256: dpop_alg_not_allowed', async () => {
    const secret = randomBytes(32);
    const header = b64json({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: secret.toString('base64url') } });
    const payload = b64json({ jti: 'x', htm: 'POST', htu: HTU, iat: nowS(), ath: accessTokenHash(TOKEN) });
    const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    for (const algorithms of [POLICY.algorithms, [...POLICY.algorithms, 'HS256']]) {
      expect(await refused(verifyDpopProof(request(`${header}.${payload}.${mac}`), { ...POLICY, algorithms }))).toEqual(
        invalidProof('dpop_alg_not_allowed'),
      );
    }
    // HS256 with the EC public key as the HMAC secret (the classic confusion): the same.
    const confused = b64json({ typ: 'dpop+jwt', alg: 'HS256', jwk: es256Jwk });
    const mac2 = createHmac('sha256', JSON.stringify(es256Jwk)).update(`${confused}.${payload}`).digest('base64url');
    expect(
      await refused(
        verifyDpopProof(request(`${confused}.${payload}.${mac2}`), { ...POLICY, algorithms: ['HS256', 'ES256'] }),
      ),
    ).toEqual(invalidProof('dpop_alg_not_allowed'));
  });

  it('an asymmetric alg outside the configured list: dpop_alg_not_allowed', async () => {
    const p384 = await generateKeyPair('ES384', { extractable: true });
    const proof = await craft({ key: p384, header: { alg: 'ES384' } });
    const jkt = await calculateJwkThumbprint(await exportJWK(p384.publicKey));
    expect(await refused(verifyDpopProof(request(proof, { cnfJkt: jkt }), POLICY))).toEqual(
      invalidProof('dpop_alg_not_allowed'),
    );
    expect((await verifyDpopProof(request(proof, { cnfJkt: jkt }), { ...POLICY, algorithms: ['ES384'] })).ok).toBe(
      true,
    );
  });

  it('a header seen before (kept with its key) is still refused once a reload drops its alg', async () => {
    const first = await craft();
    expect((await verifyDpopProof(request(first), POLICY)).ok).toBe(true);
    // Same header text, another proof: accepted from what was kept, then refused under a list without ES256.
    expect((await verifyDpopProof(request(await craft()), POLICY)).ok).toBe(true);
    expect(await refused(verifyDpopProof(request(await craft()), { ...POLICY, algorithms: ['RS256'] }))).toEqual(
      invalidProof('dpop_alg_not_allowed'),
    );
    // And a kept header never vouches for another signature.
    const forged = `${first.slice(0, first.lastIndexOf('.'))}.${(await craft({ key: other })).split('.')[2]}`;
    expect(await refused(verifyDpopProof(request(forged), POLICY))).toEqual(invalidProof('dpop_signature_invalid'));
  });

  it('a private jwk (with d), validly signed: dpop_jwk_invalid', async () => {
    const privateJwk = await exportJWK(es256.privateKey);
    expect(privateJwk.d).toBeDefined();
    expect(await refused(verifyDpopProof(request(await craft({ header: { jwk: privateJwk } })), POLICY))).toEqual(
      invalidProof('dpop_jwk_invalid'),
    );
    // An RSA key with its private members, and an oct key with k.
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const rsaPrivate = await exportJWK(rsa.privateKey);
    expect(
      await refused(
        verifyDpopProof(request(await craft({ key: rsa, header: { alg: 'RS256', jwk: rsaPrivate } })), POLICY),
      ),
    ).toEqual(invalidProof('dpop_jwk_invalid'));
    expect(
      await refused(verifyDpopProof(request(await craft({ header: { jwk: { ...es256Jwk, k: 'AAAA' } } })), POLICY)),
    ).toEqual(invalidProof('dpop_jwk_invalid'));
  });

  it('no jwk, a jwk that does not fit the alg, or a point not on the curve: dpop_jwk_invalid', async () => {
    const p384 = await exportJWK((await generateKeyPair('ES384', { extractable: true })).publicKey);
    const bad: unknown[] = [
      undefined,
      'a string',
      [es256Jwk],
      { ...es256Jwk, kty: 'RSA' },
      p384, // a P-384 key with ES256
      { ...es256Jwk, alg: 'ES384' },
      { ...es256Jwk, use: 'enc' },
      { ...es256Jwk, x: 'not base64url!' },
      { ...es256Jwk, x: es256Jwk.y, y: es256Jwk.x }, // not on the curve
    ];
    for (const jwk of bad)
      expect(await refused(verifyDpopProof(request(await craft({ header: { jwk } })), POLICY))).toEqual(
        invalidProof('dpop_jwk_invalid'),
      );
  });

  it('an RSA key under 2048 bits: dpop_jwk_invalid', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = small.publicKey.export({ format: 'jwk' });
    const header = b64json({ typ: 'dpop+jwt', alg: 'RS256', jwk });
    const payload = b64json({ jti: 'x', htm: 'POST', htu: HTU, iat: nowS(), ath: accessTokenHash(TOKEN) });
    const { sign } = await import('node:crypto');
    const sig = sign('sha256', Buffer.from(`${header}.${payload}`), small.privateKey).toString('base64url');
    expect(await refused(verifyDpopProof(request(`${header}.${payload}.${sig}`), POLICY))).toEqual(
      invalidProof('dpop_jwk_invalid'),
    );
  });

  it('a signature by another key than the jwk, or a payload changed after signing: dpop_signature_invalid', async () => {
    const signedByOther = await craft({ header: { jwk: es256Jwk }, key: other });
    expect(await refused(verifyDpopProof(request(signedByOther), POLICY))).toEqual(
      invalidProof('dpop_signature_invalid'),
    );
    const [h, , s] = (await craft()).split('.');
    const changed = b64json({ jti: 'x', htm: 'POST', htu: HTU, iat: nowS(), ath: accessTokenHash(TOKEN) });
    expect(await refused(verifyDpopProof(request(`${h}.${changed}.${s}`), POLICY))).toEqual(
      invalidProof('dpop_signature_invalid'),
    );
  });

  it('a crit header (no extension is understood): dpop_proof_malformed', async () => {
    expect(await refused(verifyDpopProof(request(await rawSign({ crit: ['exp'], exp: 1 })), POLICY))).toEqual(
      invalidProof('dpop_proof_malformed'),
    );
    // The same header without crit is a valid proof: crit alone made the difference.
    expect((await verifyDpopProof(request(await rawSign({ exp: 1 })), POLICY)).ok).toBe(true);
  });
});

describe('the claims (RFC 9449, §4.3 rules 3, 8, 9, 11, 12)', () => {
  it.each(['jti', 'htm', 'htu', 'iat', 'ath'])('no %s: dpop_claim_missing', async (claim) => {
    expect(await refused(verifyDpopProof(request(await craft({ omit: [claim] })), POLICY))).toEqual(
      invalidProof('dpop_claim_missing'),
    );
  });

  it('claims of the wrong type, or a jti over 256 characters: dpop_claim_invalid', async () => {
    for (const claims of [
      { jti: 5 },
      { jti: '' },
      { jti: 'j'.repeat(257) },
      { htm: ['POST'] },
      { htu: {} },
      { iat: String(nowS()) },
      { ath: 1 },
    ]) {
      expect(await refused(verifyDpopProof(request(await craft({ claims })), POLICY))).toEqual(
        invalidProof('dpop_claim_invalid'),
      );
    }
    expect((await verifyDpopProof(request(await craft({ claims: { jti: 'j'.repeat(256) } })), POLICY)).ok).toBe(true);
  });

  it('htm other than the request method (case-sensitive): dpop_htm_mismatch', async () => {
    for (const htm of ['GET', 'post', 'POST ']) {
      expect(await refused(verifyDpopProof(request(await craft({ claims: { htm } })), POLICY))).toEqual(
        invalidProof('dpop_htm_mismatch'),
      );
    }
    const proof = await dpop.generateProof(await dpop.generateKeyPair('ES256'), HTU, 'GET', undefined, TOKEN);
    expect(await refused(verifyDpopProof(request(proof, { method: 'DELETE' }), POLICY))).toEqual(
      invalidProof('dpop_htm_mismatch'),
    );
  });

  it('htu for another path, host, port or scheme: dpop_htu_mismatch', async () => {
    for (const htu of [
      'https://api.example.com/v1/orders/7',
      'https://api.example.com/v1/Orders',
      'https://api.example.com/v1/orders/',
      'https://evil.example.com/v1/orders',
      'https://api.example.com:8443/v1/orders',
      'http://api.example.com/v1/orders',
      'https://user@api.example.com/v1/orders',
      'https://api.example.com/v1\\orders',
      'https://api.example.com/v1/or ders',
      '/v1/orders',
      'not a uri',
    ]) {
      expect(await refused(verifyDpopProof(request(await craft({ claims: { htu } })), POLICY)), htu).toEqual(
        invalidProof('dpop_htu_mismatch'),
      );
    }
  });

  it('htu equal after RFC 3986 normalization passes; query and fragment are ignored', async () => {
    for (const htu of [
      'HTTPS://API.Example.COM/v1/orders',
      'https://api.example.com:443/v1/orders',
      'https://api.example.com/v1/./x/../orders',
      'https://api.example.com/v1/%6frders',
      'https://api.example.com/v1/orders?page=2',
      'https://api.example.com/v1/orders#top',
    ]) {
      expect((await verifyDpopProof(request(await craft({ claims: { htu } })), POLICY)).ok, htu).toBe(true);
    }
  });

  it('a request whose URI cannot be rebuilt (htu undefined): dpop_htu_mismatch', async () => {
    expect(await refused(verifyDpopProof(request(await craft(), { htu: undefined }), POLICY))).toEqual(
      invalidProof('dpop_htu_mismatch'),
    );
  });

  it('iat older than max_age_seconds + skew: dpop_iat_invalid; just inside: passes', async () => {
    const nowMs = Date.now();
    const t = Math.floor(nowMs / 1000);
    expect(
      await refused(verifyDpopProof(request(await craft({ claims: { iat: t - 66 } }), { nowMs }), POLICY)),
    ).toEqual(invalidProof('dpop_iat_invalid'));
    expect(
      await refused(verifyDpopProof(request(await craft({ claims: { iat: t - 3600 } }), { nowMs }), POLICY)),
    ).toEqual(invalidProof('dpop_iat_invalid'));
    expect((await verifyDpopProof(request(await craft({ claims: { iat: t - 64 } }), { nowMs }), POLICY)).ok).toBe(true);
    // A shorter window refuses what the longer one accepted.
    expect(
      await refused(
        verifyDpopProof(request(await craft({ claims: { iat: t - 20 } }), { nowMs }), { ...POLICY, maxAgeSeconds: 10 }),
      ),
    ).toEqual(invalidProof('dpop_iat_invalid'));
  });

  it('iat in the future beyond the skew: dpop_iat_invalid; within the skew: passes', async () => {
    const nowMs = Date.now();
    const t = nowMs / 1000;
    expect(
      await refused(verifyDpopProof(request(await craft({ claims: { iat: Math.ceil(t) + 6 } }), { nowMs }), POLICY)),
    ).toEqual(invalidProof('dpop_iat_invalid'));
    expect(
      await refused(verifyDpopProof(request(await craft({ claims: { iat: Math.ceil(t) + 3600 } }), { nowMs }), POLICY)),
    ).toEqual(invalidProof('dpop_iat_invalid'));
    expect(
      (await verifyDpopProof(request(await craft({ claims: { iat: Math.floor(t) + 4 } }), { nowMs }), POLICY)).ok,
    ).toBe(true);
  });

  it('a proof made for another access token: dpop_ath_mismatch', async () => {
    const kp = await dpop.generateKeyPair('ES256');
    const jkt = await dpop.calculateThumbprint(kp.publicKey);
    const proof = await dpop.generateProof(kp, HTU, 'POST', undefined, 'another-token');
    expect(await refused(verifyDpopProof(request(proof, { cnfJkt: jkt }), POLICY))).toEqual(
      invalidProof('dpop_ath_mismatch'),
    );
    // The same proof with the token it was made for passes.
    expect((await verifyDpopProof(request(proof, { cnfJkt: jkt, accessToken: 'another-token' }), POLICY)).ok).toBe(
      true,
    );
  });
});

describe('the key binding (RFC 9449, §6, §7.1)', () => {
  it('a valid proof by a key other than the token is bound to: dpop_key_mismatch with error invalid_token', async () => {
    const proof = await craft({ key: other });
    expect(await refused(verifyDpopProof(request(proof), POLICY))).toEqual({
      reason: 'dpop_key_mismatch',
      error: 'invalid_token',
    });
    const otherJkt = await calculateJwkThumbprint(await exportJWK(other.publicKey));
    expect((await verifyDpopProof(request(proof, { cnfJkt: otherJkt }), POLICY)).ok).toBe(true);
  });

  it('a token without cnf.jkt sent as DPoP: dpop_token_not_bound with error invalid_token, whatever the proof', async () => {
    expect(await refused(verifyDpopProof(request(await craft(), { cnfJkt: undefined }), POLICY))).toEqual({
      reason: 'dpop_token_not_bound',
      error: 'invalid_token',
    });
  });
});

describe('single use (RFC 9449, §11.1)', () => {
  it('the same proof twice: the second is dpop_replayed; another proof of the same key passes', async () => {
    const cache = new MemoryReplayCache();
    const proof = await craft();
    const first = await verifyDpopProof(request(proof), POLICY);
    if (!first.ok) throw new Error(first.reason);
    expect(await checkDpopReplay(cache, first)).toBeUndefined();
    const again = await verifyDpopProof(request(proof), POLICY);
    if (!again.ok) throw new Error(again.reason);
    expect(await checkDpopReplay(cache, again)).toMatchObject(invalidProof('dpop_replayed'));
    const fresh = await verifyDpopProof(request(await craft()), POLICY);
    if (!fresh.ok) throw new Error(fresh.reason);
    expect(await checkDpopReplay(cache, fresh)).toBeUndefined();
  });

  it('the same jti under two keys is two proofs (the cache key is jkt + jti)', () => {
    const cache = new MemoryReplayCache();
    const exp = Date.now() + 60_000;
    expect(cache.seenNow(replayKey('key-a', 'j1'), exp, Date.now())).toBe(false);
    expect(cache.seenNow(replayKey('key-b', 'j1'), exp, Date.now())).toBe(false);
    expect(cache.seenNow(replayKey('key-a', 'j1'), exp, Date.now())).toBe(true);
    // Hash of both, the first length-prefixed: nothing of the jti is kept, and "ab"+"c" is not "a"+"bc".
    expect(replayKey('ab', 'c')).not.toBe(replayKey('a', 'bc'));
    expect(replayKey('k', 'j')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('server nonces (RFC 9449, §9)', () => {
  const secret = 'n'.repeat(40);
  const nonces = new DpopNonces({ secret, windowSeconds: 60 });
  const withNonces: DpopPolicy = { ...POLICY, nonces };

  it('required and absent: dpop_nonce_required with error use_dpop_nonce; the challenge comes with DPoP-Nonce', async () => {
    expect(await refused(verifyDpopProof(request(await craft()), withNonces))).toEqual({
      reason: 'dpop_nonce_required',
      error: 'use_dpop_nonce',
    });
    expect(POP_REASONS.dpop_nonce_required).toMatchObject({ status: 401, nonce: true });
  });

  it('the current nonce passes (a dpop-package proof); the previous window passes and asks for renewal; older or forged: dpop_nonce_invalid', async () => {
    const now = Date.now();
    const kp = await dpop.generateKeyPair('ES256');
    const jkt = await dpop.calculateThumbprint(kp.publicKey);
    const current = nonces.current(now);
    const ok = await verifyDpopProof(
      request(await dpop.generateProof(kp, HTU, 'POST', current, TOKEN), { cnfJkt: jkt, nowMs: now }),
      withNonces,
    );
    expect(ok).toMatchObject({ ok: true, renewNonce: false });

    const previous = nonces.current(now - 60_000);
    const renew = await verifyDpopProof(
      request(await craft({ claims: { nonce: previous } }), { nowMs: now }),
      withNonces,
    );
    expect(renew).toMatchObject({ ok: true, renewNonce: true });

    const forged = `${current.split('.')[0]}.${'A'.repeat(22)}`;
    for (const nonce of [
      nonces.current(now - 120_000),
      new DpopNonces({ secret: 'x'.repeat(40), windowSeconds: 60 }).current(now),
      forged,
      'garbage',
      42,
      '',
    ]) {
      expect(
        await refused(verifyDpopProof(request(await craft({ claims: { nonce } }), { nowMs: now }), withNonces)),
      ).toEqual({ reason: 'dpop_nonce_invalid', error: 'use_dpop_nonce' });
    }
  });

  it('a nonce is NQCHAR only (RFC 9449, §8.1), the same on replicas sharing the secret, and stable within a window', () => {
    const t = Date.now();
    const n = nonces.current(t);
    expect(n).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]+$/);
    expect(new DpopNonces({ secret, windowSeconds: 60 }).current(t)).toBe(n);
    expect(nonces.current(t)).toBe(n);
    expect(nonces.check(n, t)).toBe('valid');
  });

  it('a generated secret is per instance; a configured one must be at least 32 bytes', () => {
    const a = new DpopNonces({ windowSeconds: 60 });
    expect(a.generatedSecret).toBe(true);
    expect(new DpopNonces({ windowSeconds: 60 }).check(a.current(), Date.now())).toBe('invalid');
    expect(() => new DpopNonces({ secret: 'short', windowSeconds: 60 })).toThrow(
      /credentials\.dpop\.nonce_secret: the secret is 5 bytes; use at least 32/,
    );
  });
});

describe('hostile input never throws', () => {
  it('3,000 mutations of a valid proof (characters replaced, cut, repeated) all resolve to a refusal', async () => {
    const proof = await craft();
    const alphabet = 'AZaz09-_.,= \u0000é';
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const reasons = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      let p = proof;
      const kind = rnd(4);
      if (kind === 0)
        for (let k = 0; k <= rnd(3); k++) {
          const at = rnd(p.length);
          p = p.slice(0, at) + alphabet[rnd(alphabet.length)] + p.slice(at + 1);
        }
      else if (kind === 1) p = p.slice(0, rnd(p.length));
      else if (kind === 2) p = p.slice(rnd(p.length));
      else p = p + p.slice(rnd(p.length));
      if (p === proof) continue;
      const r = await verifyDpopProof(request(p), POLICY);
      expect(r.ok).toBe(false);
      if (!r.ok) reasons.add(r.reason);
    }
    expect([...reasons].every((r) => r.startsWith('dpop_'))).toBe(true);
  });

  it('header and claim values of every JSON type resolve to a refusal', async () => {
    const values: unknown[] = [null, true, 0, -1, 1e308, '', 'x', [], {}, [null], { a: 1 }];
    const nonces = { ...POLICY, nonces: new DpopNonces({ windowSeconds: 60 }) };
    for (const v of values) {
      for (const name of ['typ', 'alg', 'jwk', 'crit']) {
        expect(
          (await verifyDpopProof(request(await rawSign({ [name]: v })), POLICY)).ok,
          `${name}: ${JSON.stringify(v)}`,
        ).toBe(false);
      }
      const claims =
        typeof v === 'string'
          ? ['iat']
          : typeof v === 'number'
            ? ['jti', 'htm', 'htu', 'ath']
            : ['jti', 'htm', 'htu', 'iat', 'ath'];
      for (const name of claims) {
        expect(
          (await verifyDpopProof(request(await craft({ claims: { [name]: v } })), POLICY)).ok,
          `${name}: ${JSON.stringify(v)}`,
        ).toBe(false);
      }
      expect((await verifyDpopProof(request(await craft({ claims: { nonce: v } })), nonces)).ok).toBe(false);
    }
  });
});

describe('htu reconstruction', () => {
  const req = (scheme: string, authority: string, path: string) => ({ scheme, authority, path });
  const asIs = compileHtuOrigins(undefined);

  it("from Envoy's scheme, :authority and :path; the query is cut off; normalized like the proof's htu", () => {
    expect(requestHtu(req('https', 'api.example.com', '/v1/orders?x=1'), asIs)).toBe(
      'https://api.example.com/v1/orders',
    );
    expect(requestHtu(req('https', 'API.example.com:443', '/v1/orders'), asIs)).toBe(
      'https://api.example.com/v1/orders',
    );
    expect(requestHtu(req('http', 'localhost:8080', '/a/%7e/b#f'), asIs)).toBe('http://localhost:8080/a/~/b');
    expect(requestHtu(req('https', '[::1]:8443', '/'), asIs)).toBe('https://[::1]:8443/');
    expect(requestHtu(req('https', 'api.example.com', '/a/%2f'), asIs)).toBe('https://api.example.com/a/%2F');
  });

  it('what cannot be rebuilt is undefined (then no proof matches)', () => {
    for (const [s, a, p] of [
      ['https', 'api.example.com', '*'],
      ['https', 'api.example.com', 'http://other/x'],
      ['ftp', 'api.example.com', '/'],
      ['https', 'user@api.example.com', '/'],
      ['https', 'api.example.com/evil', '/'],
      ['https', '', '/'],
      ['https', 'api.example.com', '/a b'],
      ['https', 'api.example.com', '/a\\b'],
      ['https', 'api.example.com', '/é'],
    ]) {
      expect(requestHtu(req(s, a, p), asIs), `${s} ${a} ${p}`).toBeUndefined();
    }
  });

  it("external_origin as one origin replaces Envoy's scheme and authority (TLS terminated in front), with an optional stripped prefix", () => {
    const fixed = compileHtuOrigins('https://api.example.com');
    expect(requestHtu(req('http', 'envoy.internal:10000', '/v1/orders?q'), fixed)).toBe(
      'https://api.example.com/v1/orders',
    );
    const prefixed = compileHtuOrigins('https://example.com/api/');
    expect(requestHtu(req('http', 'backend:8080', '/v1/orders'), prefixed)).toBe('https://example.com/api/v1/orders');
  });

  it("external_origin as a map picks by the authority Envoy sees; an unlisted authority keeps Envoy's", () => {
    const map = compileHtuOrigins({
      'api.internal:8080': 'https://api.example.com',
      'Admin.Internal': 'https://admin.example.com',
    });
    expect(requestHtu(req('http', 'api.internal:8080', '/x'), map)).toBe('https://api.example.com/x');
    expect(requestHtu(req('http', 'ADMIN.internal.', '/x'), map)).toBe('https://admin.example.com/x');
    expect(requestHtu(req('http', 'api.internal:9090', '/x'), map)).toBe('http://api.internal:9090/x');
  });

  it('a bad external_origin is a config error that names the path and says what to write', () => {
    for (const bad of [
      'api.example.com',
      'ftp://x',
      'https://u:p@x',
      'https://x/?q=1',
      'https://x/#f',
      'https://x y',
    ]) {
      expect(() => parseExternalOrigin(bad), bad).toThrow(
        /^credentials\.dpop\.external_origin: .* write the origin clients call, e\.g\. https:\/\/api\.example\.com/,
      );
    }
    expect(() => compileHtuOrigins({ 'a b': 'https://x' })).toThrow(/key "a b" is not an authority/);
    expect(() => compileHtuOrigins({ 'A.com': 'https://x', 'a.com': 'https://y' })).toThrow(/listed twice/);
  });

  it('normalizeHtu: scheme-based and syntax-based normalization, nothing else', () => {
    expect(normalizeHtu('HTTPS://Ex.COM:443/a/./b/../c')).toBe('https://ex.com/a/c');
    expect(normalizeHtu('http://ex.com')).toBe('http://ex.com/');
    expect(normalizeHtu('http://ex.com:80/')).toBe('http://ex.com/');
    expect(normalizeHtu('https://ex.com/%7e%41%2f%3a')).toBe('https://ex.com/~A%2F%3A');
    expect(normalizeHtu('https://ex.com/A')).not.toBe(normalizeHtu('https://ex.com/a'));
    expect(normalizeHtu('https://ex.com/' + 'a'.repeat(9000))).toBeUndefined();
  });

  it('normalizeHtu is idempotent: verify compares a proof htu equal to the normalized request htu without parsing it', () => {
    for (const uri of [
      'HTTPS://Ex.COM:443/a/./b/../c',
      'http://ex.com',
      'https://ex.com/%7e%41%2f%3a%2F%25',
      'https://[::1]:8443/x/%e2%82%ac',
      'http://ex.com:8080/a//b/',
      'https://xn--bcher-kva.example/%5B%5D',
      'https://ex.com/a/%2e%2E/b',
    ]) {
      const once = normalizeHtu(uri);
      expect(once, uri).toBeDefined();
      expect(normalizeHtu(once!), uri).toBe(once);
    }
  });
});

describe('which binding a token and route demand', () => {
  const jkt = 'A'.repeat(43);
  const x5t = 'B'.repeat(43);

  it('readConfirmation: absent is unbound; jkt and x5t#S256 are read; anything else refuses the token', () => {
    expect(readConfirmation(undefined)).toEqual({ kind: 'unbound' });
    expect(readConfirmation({ jkt })).toEqual({ kind: 'bound', cnf: { jkt } });
    expect(readConfirmation({ 'x5t#S256': x5t, jkt })).toEqual({ kind: 'bound', cnf: { jkt, x5tS256: x5t } });
    for (const bad of [null, 'jkt', [jkt], {}, { jkt: 'short' }, { jkt: 1 }, { 'x5t#S256': `${x5t}=` }])
      expect(readConfirmation(bad)).toEqual({ kind: 'invalid', reason: 'cnf_invalid' });
    for (const other of [{ jwk: {} }, { kid: 'k' }, { jkt, jku: 'https://x' }])
      expect(readConfirmation(other)).toEqual({ kind: 'invalid', reason: 'cnf_unsupported' });
  });

  it('planBinding: the RFC 9449 §7.2 downgrade, unbound DPoP, and each sender_constraint', () => {
    const bound = (cnf: object) => readConfirmation(cnf);
    const unbound = readConfirmation(undefined);
    const deny = (reason: string) => ({ action: 'deny', reason });
    expect(planBinding({ scheme: 'bearer', confirmation: bound({ jkt }), required: 'none' })).toEqual(
      deny('dpop_bound_token_as_bearer'),
    );
    expect(planBinding({ scheme: 'dpop', confirmation: unbound, required: 'none' })).toEqual(
      deny('dpop_token_not_bound'),
    );
    expect(planBinding({ scheme: 'dpop', confirmation: bound({ 'x5t#S256': x5t }), required: 'none' })).toEqual(
      deny('dpop_token_not_bound'),
    );
    expect(planBinding({ scheme: 'bearer', confirmation: unbound, required: 'dpop' })).toEqual(deny('dpop_required'));
    expect(planBinding({ scheme: 'bearer', confirmation: unbound, required: 'mtls' })).toEqual(
      deny('mtls_binding_required'),
    );
    expect(planBinding({ scheme: 'dpop', confirmation: bound({ jkt }), required: 'mtls' })).toEqual(
      deny('mtls_binding_required'),
    );
    expect(planBinding({ scheme: 'bearer', confirmation: unbound, required: 'any' })).toEqual(
      deny('sender_constraint_required'),
    );
    expect(
      planBinding({ scheme: 'bearer', confirmation: { kind: 'invalid', reason: 'cnf_unsupported' }, required: 'none' }),
    ).toEqual(deny('cnf_unsupported'));

    expect(planBinding({ scheme: 'bearer', confirmation: unbound, required: 'none' })).toEqual({
      action: 'check',
      bound: 'none',
    });
    expect(planBinding({ scheme: 'dpop', confirmation: bound({ jkt }), required: 'dpop' })).toEqual({
      action: 'check',
      dpop: { jkt },
      bound: 'dpop',
    });
    expect(planBinding({ scheme: 'bearer', confirmation: bound({ 'x5t#S256': x5t }), required: 'any' })).toEqual({
      action: 'check',
      certificate: { x5tS256: x5t },
      bound: 'mtls',
    });
    expect(planBinding({ scheme: 'dpop', confirmation: bound({ jkt, 'x5t#S256': x5t }), required: 'any' })).toEqual({
      action: 'check',
      dpop: { jkt },
      certificate: { x5tS256: x5t },
      bound: 'dpop+mtls',
    });
  });

  it('every reason has a status, and a DPoP challenge carries algs and the error', () => {
    for (const [reason, info] of Object.entries(POP_REASONS))
      expect([400, 401, 403, 503], reason).toContain(info.status);
    expect(dpopChallenge(['ES256', 'EdDSA'])).toBe('DPoP algs="ES256 EdDSA"');
    expect(
      dpopChallenge(
        ['ES256', 'HS256'],
        { error: 'invalid_dpop_proof', description: 'the "DPoP" proof\n' },
        'portcullis',
      ),
    ).toBe(
      'DPoP realm="portcullis", error="invalid_dpop_proof", error_description="the \\"DPoP\\" proof", algs="ES256"',
    );
  });
});

describe('the in-memory replay cache', () => {
  it('forgets a proof once it has expired, and never holds more than maxEntries (reporting a live one forgotten)', () => {
    let evicted = 0;
    const cache = new MemoryReplayCache({ maxEntries: 3, onEvictUnexpired: () => evicted++ });
    const t = 1_000_000;
    expect(cache.seenNow('a', t + 100, t)).toBe(false);
    expect(cache.seenNow('a', t + 100, t + 50)).toBe(true);
    expect(cache.seenNow('a', t + 200, t + 100)).toBe(false); // expired: a new entry
    cache.seenNow('b', t + 1000, t + 100);
    cache.seenNow('c', t + 1000, t + 100);
    expect(cache.size).toBe(3);
    cache.seenNow('d', t + 1000, t + 100);
    expect(cache.size).toBe(3);
    expect(evicted).toBe(1);
    // Expired entries are dropped before anything live is forgotten.
    cache.seenNow('e', t + 5000, t + 2000);
    expect(evicted).toBe(1);
    expect(cache.size).toBe(1);
    // A proof already past its expiry is not stored.
    expect(cache.seenNow('f', t, t + 2000)).toBe(false);
    expect(cache.size).toBe(1);
  });
});
