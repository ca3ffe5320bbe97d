// parseToken's header memo: tokens sharing a header segment reuse one judged, frozen header; the
// memo never changes a verdict, never keeps a rejected header, and stays bounded.
import { describe, expect, it } from 'vitest';
import { HEADER_MEMO_MAX, headerMemoSize, parseToken } from '../../src/credentials/jwt/token-parts.ts';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const token = (header: unknown, payload: unknown, sig = 'c2ln') => `${b64(header)}.${b64(payload)}.${sig}`;
const reason = (t: string) => {
  try {
    parseToken(t);
  } catch (e) {
    return (e as { reason?: string }).reason;
  }
  return 'accepted';
};

describe('parseToken header memo', () => {
  it('tokens with one header segment share one frozen header, and each payload is still read', () => {
    const header = { alg: 'RS256', kid: 'memo-1', typ: 'at+jwt' };
    const a = parseToken(token(header, { sub: 'alice' }));
    const b = parseToken(token(header, { sub: 'bob' }));
    expect(b.header).toBe(a.header);
    expect(Object.isFrozen(a.header)).toBe(true);
    expect([a.alg, a.kid, b.alg, b.kid]).toEqual(['RS256', 'memo-1', 'RS256', 'memo-1']);
    expect([a.payload.sub, b.payload.sub]).toEqual(['alice', 'bob']);
    // A remembered header does not vouch for anything after it.
    expect(reason(`${b64(header)}.${b64('not json')}.c2ln`)).toBe('jwt_payload_malformed');
    expect(reason(`${b64(header)}.${b64([1])}.c2ln`)).toBe('jwt_payload_malformed');
    expect(reason(`${b64(header)}.${b64({ sub: 'x' })}.`)).toBe('jwt_signature_missing');
    expect(reason(`${b64(header)}.${b64({ sub: 'x' })}.c2ln.x.y`)).toBe('jwt_encrypted_unsupported');
  });

  it('a rejected header is rejected every time with the same reason, and not remembered', () => {
    const cases: Array<[unknown, string]> = [
      [{ alg: 'none' }, 'jwt_alg_none'],
      [{ alg: 'HS256' }, 'jwt_alg_hmac'],
      [{ alg: 'RS256', jku: 'https://evil.example/jwks' }, 'jwt_header_key_reference'],
      [{ alg: 'RS256', crit: ['exp'] }, 'jwt_crit_unsupported'],
      [{ alg: 'RS256', kid: '' }, 'jwt_kid_invalid'],
      ['{"alg":', 'jwt_header_malformed'],
    ];
    for (const [header, why] of cases) {
      const before = headerMemoSize();
      expect(reason(token(header, { sub: 'a' }))).toBe(why);
      expect(reason(token(header, { sub: 'b' }))).toBe(why);
      expect(headerMemoSize()).toBe(before);
    }
  });

  it('stays bounded under a flood of distinct acceptable headers, and keeps judging each correctly', () => {
    for (let i = 0; i < HEADER_MEMO_MAX * 4; i++) {
      const parts = parseToken(token({ alg: 'ES256', kid: `flood-${i}` }, { n: i }));
      expect(parts.kid).toBe(`flood-${i}`);
      expect(parts.payload.n).toBe(i);
      expect(headerMemoSize()).toBeLessThanOrEqual(HEADER_MEMO_MAX);
    }
    // After the flood a known-bad header is still refused and a good one still accepted.
    expect(reason(token({ alg: 'none' }, {}))).toBe('jwt_alg_none');
    expect(reason(token({ alg: 'RS256', kid: 'after' }, {}))).toBe('accepted');
  });

  it('long header segments are judged every time, not remembered', () => {
    const before = headerMemoSize();
    const long = { alg: 'RS256', kid: 'k', x: 'y'.repeat(600) };
    expect(reason(token(long, {}))).toBe('accepted');
    expect(headerMemoSize()).toBe(before);
  });
});
