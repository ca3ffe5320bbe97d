// Which bearer tokens are JWTs (then JWTs or nothing, never introspected), what counts as the one
// canonical base64url spelling of a segment, and how `typ` is compared.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classifyBearer, looksLikeJwt } from '../../src/core/credential.ts';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import { isCanonicalBase64url, normalizeTyp } from '../../src/credentials/jwt/token-parts.ts';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const H = b64({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' });
const P = b64({ sub: 'alice', exp: 1 });

describe('looksLikeJwt', () => {
  it('takes JWTs and their near-misses for JWTs', () => {
    for (const t of [
      `${H}.${P}.c2ln`,
      `${H}.${P}.c2ln=`,
      `${H}.${P}`,
      `${H}.${P}.`,
      `${H}.${P}.c2ln.`,
      `${H}.${P}.c2ln.eHg`,
      `${H}.${P}.a.b.c`,
      `${H}.${P}.c2ln`.replaceAll('_', '/').replaceAll('-', '+'),
      `.${P}.c2ln`,
      '..',
      'a.b.c',
      H, // a JOSE header alone
      `${H}${P}c2ln`, // dots removed
      `${H}.`,
      b64({ alg: 'ES256' }), // the shortest header there is
    ]) {
      expect(looksLikeJwt(t), t).toBe(true);
      expect(classifyBearer(t, 'pcl')).toBe('jwt');
    }
  });

  it('leaves real opaque tokens to introspection: random base64url, one dot (Ory Hydra, Google), API keys to the key store', () => {
    const opaque = [
      randomBytes(32).toString('base64url'),
      `ory_at_${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
      `ya29.${randomBytes(60).toString('base64url')}`,
      'eyJ', // too short to be a header
      'eyJ/////////////',
    ];
    for (const t of opaque) expect(classifyBearer(t, 'pcl'), t).toBe('oauth2');
    expect(classifyBearer(generateApiKey('pcl'), 'pcl')).toBe('api-key');
    // Random base64url tokens are practically never taken for JWTs, even when they start with eyJ.
    let taken = 0;
    for (let i = 0; i < 20000; i++) if (looksLikeJwt(`eyJ${randomBytes(30).toString('base64url')}`)) taken++;
    expect(taken).toBeLessThan(3);
  });
});

describe('isCanonicalBase64url', () => {
  it('accepts exactly the spelling Buffer#toString("base64url") would give', () => {
    for (let n = 0; n < 40; n++) {
      const s = randomBytes(n).toString('base64url');
      expect(isCanonicalBase64url(s), s).toBe(true);
    }
  });

  it('refuses unused bits, padding, the base64 alphabet, other characters and impossible lengths', () => {
    for (const s of ['QR', 'QQ==', 'QUJ', 'QUI=', 'a+b/', 'ab~c', 'ab c', 'abcde', 'A', 'ab\u00e9c', 'ab.c', 'AQID=']) {
      expect(isCanonicalBase64url(s), s).toBe(false);
    }
    expect(['QQ', 'QUI', 'QUJD'].map(isCanonicalBase64url)).toEqual([true, true, true]);
  });
});

describe('normalizeTyp', () => {
  it('ASCII case-insensitive, application/ optional, nothing else', () => {
    expect(['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+jwt'].map(normalizeTyp)).toEqual([
      'at+jwt',
      'at+jwt',
      'at+jwt',
      'at+jwt',
    ]);
    for (const t of ['at+jwt ', ' at+jwt', 'at+jwt\t', 'at+\u212Awt', 'аt+jwt'])
      expect(normalizeTyp(t), JSON.stringify(t)).not.toBe('at+jwt');
    expect(normalizeTyp('application/application/at+jwt')).toBe('application/at+jwt');
    expect(normalizeTyp('application/')).toBe('');
  });
});
