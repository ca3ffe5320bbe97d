// The node:crypto signature check against tokens signed by jose, for every accepted algorithm.
import { createSign, generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { VerificationKey } from '../../src/credentials/jwt/key-set.ts';
import { signatureValid } from '../../src/credentials/jwt/signature.ts';

const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

async function setup(alg: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const vk: VerificationKey = { alg, key: (await importJWK(await exportJWK(publicKey), alg)) as CryptoKey };
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg }).sign(privateKey);
  return { vk, token, privateKey };
}

describe('signatureValid', () => {
  it.each(ALGS)('%s: accepts jose-signed tokens; refuses a changed payload, signature or key', async (alg) => {
    const { vk, token } = await setup(alg);
    expect(signatureValid(token, vk)).toBe(true);
    const [h, p, s] = token.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ sub: 'mallory' })).toString('base64url');
    expect(signatureValid(`${h}.${otherPayload}.${s}`, vk)).toBe(false);
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    expect(signatureValid(`${h}.${p}.${flipped}`, vk)).toBe(false);
    expect(signatureValid(`${h}.${p}.`, vk)).toBe(false);
    expect(signatureValid(`${h}.${p}.${s}===`, vk)).toBe(false);
    expect(signatureValid(`${h}.${p}.${s.slice(0, -4)}`, vk)).toBe(false);
    const other = await setup(alg);
    expect(signatureValid(token, other.vk)).toBe(false);
  });

  it('a key is only used for its own algorithm', async () => {
    const rs = await setup('RS256');
    expect(signatureValid(rs.token, { ...rs.vk, alg: 'PS256' })).toBe(false);
    expect(signatureValid(rs.token, { ...rs.vk, alg: 'HS256' })).toBe(false);
    expect(signatureValid(rs.token, { ...rs.vk, alg: 'none' })).toBe(false);
  });

  it('ES256 signatures must be r||s (JWS), not DER', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const vk: VerificationKey = {
      alg: 'ES256',
      key: (await importJWK(await exportJWK(publicKey), 'ES256')) as CryptoKey,
    };
    const input = `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.${Buffer.from('{"sub":"a"}').toString('base64url')}`;
    const der = createSign('sha256').update(input).sign(privateKey);
    expect(signatureValid(`${input}.${der.toString('base64url')}`, vk)).toBe(false);
    const p1363 = createSign('sha256').update(input).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect(signatureValid(`${input}.${p1363.toString('base64url')}`, vk)).toBe(true);
  });
});
