// identity.claims: a JWT's verified payload becomes the identity's claims, bounded and frozen once
// when the identity is made (identities are cached and shared by every Check with the same token).
import { describe, expect, it } from 'vitest';
import { newIdentity } from '../../src/core/identity.ts';
import { InvalidCredentialError } from '../../src/core/errors.ts';
import { checkClaims, compileIssuerPolicy } from '../../src/credentials/jwt/issuer-policy.ts';
import { parseConfig } from '../../src/policy/load.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const now = NOW / 1000;
const config = parseConfig(`
credentials:
  jwt:
    - issuer: https://idp.example.com
      audiences: [https://api.example.com]
      jwks_file: jwks.json
`);
const policy = compileIssuerPolicy(config.credentials.jwt![0], 0);
const payload = (extra: Record<string, unknown> = {}) => ({
  iss: 'https://idp.example.com',
  aud: 'https://api.example.com',
  sub: 'alice',
  client_id: 'web',
  jti: 'j1',
  iat: now - 10,
  exp: now + 300,
  scope: 'orders:read',
  ...extra,
});
const reasonOf = (p: Record<string, unknown>) => {
  try {
    checkClaims(policy, p, NOW);
    return 'accepted';
  } catch (e) {
    return (e as InvalidCredentialError).reason;
  }
};

describe('identity.claims', () => {
  it("a JWT's payload is the identity's claims, frozen all the way down", () => {
    const id = checkClaims(policy, payload({ tenant: 'acme', realm_access: { roles: ['admin'] } }), NOW);
    const claims = id.claims as { tenant: string; sub: string; realm_access: { roles: string[] } };
    expect(claims.tenant).toBe('acme');
    expect(claims.sub).toBe('alice');
    expect(Object.isFrozen(claims)).toBe(true);
    expect(Object.isFrozen(claims.realm_access)).toBe(true);
    expect(() => claims.realm_access.roles.push('x')).toThrow();
  });

  it('claims nested deeper than the bound, or not JSON values, make the token invalid (401 invalid_token)', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(reasonOf(payload({ deep }))).toBe('claims_too_deep');
    expect(reasonOf(payload({ n: Number.NaN }))).toBe('claims_invalid');
    expect(reasonOf(payload())).toBe('accepted');
  });

  it('every identity has the claims field (one object shape), undefined when the credential has none', () => {
    const id = newIdentity('api-key', { clientId: 'c', scopes: [] });
    expect(Object.keys(id)).toContain('claims');
    expect(id.claims).toBeUndefined();
  });
});
