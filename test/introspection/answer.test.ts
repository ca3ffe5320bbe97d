// Strict reading of RFC 7662 answers (pure): only a 200 JSON object with boolean `active: true`
// passes, and every claim it carries is type-checked and matched against the config.
import { describe, expect, it } from 'vitest';
import { readAnswer, type AnswerRules } from '../../src/credentials/introspection/answer.ts';

const NOW = 1_800_000_000;
const rules: AnswerRules = {
  issuer: 'https://idp.example.com',
  audiences: ['https://api.example.com'],
  requireAudience: false,
  requireTokenType: true,
  accessTokenTypes: new Set(['bearer', 'access_token', 'urn:ietf:params:oauth:token-type:access_token']),
  clockSkewSeconds: 30,
};
const good = {
  active: true,
  token_type: 'Bearer',
  iss: 'https://idp.example.com',
  aud: ['https://api.example.com', 'other'],
  sub: 'alice',
  client_id: 'web',
  scope: 'orders:read orders:write orders:read',
  exp: NOW + 300,
  iat: NOW - 10,
  nbf: NOW - 10,
};
const read = (body: unknown, r: AnswerRules = rules, status = 200, ct = 'application/json; charset=utf-8') =>
  readAnswer(status, ct, typeof body === 'string' ? body : JSON.stringify(body), r, NOW);
const rejected = (body: unknown, r?: AnswerRules) => {
  const a = read(body, r);
  return a.kind === 'rejected' ? a.reason : `not rejected: ${a.kind}`;
};

describe('introspection answers', () => {
  it('an active access token maps to an identity: sub, client_id, scopes (deduplicated), iss, exp', () => {
    const a = read(good);
    expect(a).toEqual({
      kind: 'active',
      exp: NOW + 300,
      identity: {
        method: 'oauth2',
        subject: 'alice',
        clientId: 'web',
        scopes: ['orders:read', 'orders:write'],
        issuer: 'https://idp.example.com',
        expiresAt: NOW + 300,
        claims: good,
      },
    });
    expect(Object.isFrozen((a as { identity: object }).identity)).toBe(true);
  });

  it("the answer's members become identity.claims, frozen all the way down; an answer over the claim bounds is refused", () => {
    const a = read({ ...good, tenant: 'acme', realm_access: { roles: ['admin'] } });
    if (a.kind !== 'active') throw new Error(a.kind);
    const claims = a.identity.claims as { tenant: string; realm_access: { roles: string[] } };
    expect(claims.tenant).toBe('acme');
    expect(claims.realm_access.roles).toEqual(['admin']);
    expect(Object.isFrozen(claims.realm_access.roles)).toBe(true);
    expect(() => claims.realm_access.roles.push('x')).toThrow();
    // An introspection answer is bounded by no header limit: a 1 MB answer, and one nested 100 deep.
    const big = { ...good, groups: Array.from({ length: 40_000 }, (_, i) => `group-${i}`) };
    expect(rejected(big)).toBe('claims_too_large');
    let deep: unknown = 'x';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    expect(rejected({ ...good, deep })).toBe('claims_too_deep');
  });

  it('only boolean true is active', () => {
    expect(rejected({ ...good, active: false })).toBe('token_inactive');
    expect(rejected({ ...good, active: 'true' })).toBe('introspection_active_not_boolean');
    expect(rejected({ ...good, active: 1 })).toBe('introspection_active_not_boolean');
    const { active: _a, ...noActive } = good;
    expect(rejected(noActive)).toBe('introspection_active_not_boolean');
  });

  it('anything but a 200 JSON object is unusable (503), not a verdict on the token', () => {
    expect(read(good, rules, 500)).toEqual({ kind: 'unusable', reason: 'introspection_http_5xx' });
    expect(read(good, rules, 401)).toEqual({ kind: 'unusable', reason: 'introspection_http_status' });
    expect(read(good, rules, 200, 'text/html')).toEqual({ kind: 'unusable', reason: 'introspection_not_json' });
    expect(read(good, rules, 200, 'application/token-introspection+jwt')).toEqual({
      kind: 'unusable',
      reason: 'introspection_not_json',
    });
    expect(read('{"active":true', rules)).toEqual({ kind: 'unusable', reason: 'introspection_bad_json' });
    expect(read('[{"active":true}]', rules)).toEqual({ kind: 'unusable', reason: 'introspection_not_object' });
    expect(read('null', rules)).toEqual({ kind: 'unusable', reason: 'introspection_not_object' });
  });

  it('a refresh token (or anything not an access token) presented as a bearer token is invalid', () => {
    expect(rejected({ ...good, token_type: 'refresh_token' })).toBe('token_not_access_token');
    expect(rejected({ ...good, token_type: 'urn:ietf:params:oauth:token-type:refresh_token' })).toBe(
      'token_not_access_token',
    );
    expect(rejected({ ...good, token_type: 'DPoP' })).toBe('token_not_access_token');
    expect(rejected({ ...good, token_type: 7 })).toBe('token_not_access_token');
    expect(rejected({ ...good, token_use: 'refresh_token' })).toBe('token_not_access_token');
    // oidc-provider answers refresh tokens with no token_type at all: by default that is not enough.
    const { token_type: _t, ...untyped } = good;
    expect(rejected(untyped)).toBe('token_type_missing');
    expect(read(untyped, { ...rules, requireTokenType: false }).kind).toBe('active');
    expect(read({ ...good, token_type: 'bearer' }).kind).toBe('active');
    expect(read({ ...good, token_type: 'access_token', token_use: 'access_token' }).kind).toBe('active');
  });

  it('a sender-constrained token (cnf) keeps its cnf in the claims, for the sender-constraint step', () => {
    expect(read({ ...good, cnf: { jkt: 'abc' } }).kind).toBe('active');
    // RFC 9449, §6.2: token_type DPoP is an access token when it is bound (cnf.jkt), not otherwise.
    expect(read({ ...good, token_type: 'DPoP', cnf: { jkt: 'abc' } }).kind).toBe('active');
    expect(rejected({ ...good, token_type: 'DPoP', cnf: { 'x5t#S256': 'abc' } })).toBe('token_not_access_token');
  });

  it('exp / nbf / iat must be finite numbers and hold, exp with no leeway', () => {
    expect(rejected({ ...good, exp: NOW })).toBe('token_expired');
    expect(rejected({ ...good, exp: NOW - 1 })).toBe('token_expired');
    expect(rejected({ ...good, exp: String(NOW + 300) })).toBe('token_exp_invalid');
    expect(rejected({ ...good, exp: null })).toBe('token_exp_invalid');
    expect(rejected({ ...good, nbf: NOW + 31 })).toBe('token_not_yet_valid');
    expect(read({ ...good, nbf: NOW + 30 }).kind).toBe('active');
    expect(rejected({ ...good, nbf: 'x' })).toBe('token_nbf_invalid');
    expect(rejected({ ...good, iat: NOW + 3600 })).toBe('token_iat_in_future');
    expect(rejected({ ...good, iat: [] })).toBe('token_iat_invalid');
    const { exp: _e, ...noExp } = good;
    expect(read(noExp)).toMatchObject({ kind: 'active', exp: undefined });
  });

  it("an iss the answer carries must be the configured issuer; an answer without iss speaks for the endpoint's own server", () => {
    for (const iss of [
      'https://evil.example',
      'https://idp.example.com/',
      'https://IDP.example.com',
      'https://idp.example.com.',
      '',
    ]) {
      expect(rejected({ ...good, iss })).toBe('token_issuer_mismatch');
    }
    expect(rejected({ ...good, iss: 42 })).toBe('token_iss_invalid');
    expect(rejected({ ...good, iss: null })).toBe('token_iss_invalid');
    const { iss: _i, ...noIss } = good;
    expect(read(noIss).kind).toBe('active');
    // No issuer configured: nothing to compare with (the type is still checked).
    expect(read({ ...good, iss: 'https://evil.example' }, { ...rules, issuer: undefined }).kind).toBe('active');
  });

  it('an aud the answer carries must name a configured audience (string or list); absent passes unless require_audience', () => {
    for (const aud of [
      'https://other.example.com',
      ['https://other.example.com'],
      [],
      'https://api.example.com/',
      'HTTPS://API.EXAMPLE.COM',
      '',
    ]) {
      expect(rejected({ ...good, aud })).toBe('token_audience_mismatch');
    }
    expect(read({ ...good, aud: 'https://api.example.com' }).kind).toBe('active');
    expect(read({ ...good, aud: ['x', 'https://api.example.com'] }).kind).toBe('active');
    expect(rejected({ ...good, aud: [1] })).toBe('token_aud_invalid');
    expect(rejected({ ...good, aud: { a: 1 } })).toBe('token_aud_invalid');
    const { aud: _a, ...noAud } = good;
    expect(read(noAud).kind).toBe('active');
    expect(rejected(noAud, { ...rules, requireAudience: true })).toBe('token_audience_missing');
    // allow_any_audience (no audiences): any aud passes, still type-checked.
    expect(read({ ...good, aud: 'https://other.example.com' }, { ...rules, audiences: undefined }).kind).toBe('active');
    expect(rejected({ ...good, aud: [1] }, { ...rules, audiences: undefined })).toBe('token_aud_invalid');
  });

  it('a claim with no UTF-8 form (a lone surrogate escape) is refused before it becomes an identity', () => {
    for (const [claim, raw] of [
      ['sub', '\\ud800'],
      ['client_id', 'web\\udfff'],
      ['scope', 'orders:read \\udc00'],
      ['iss', 'https://idp.example.com\\ud800'],
    ]) {
      const body = JSON.stringify({ ...good, [claim]: 'MARK' }).replace('MARK', raw);
      expect(rejected(body), claim).toBe(claim === 'iss' ? 'token_issuer_mismatch' : 'token_claim_not_unicode');
    }
    expect(read(JSON.stringify({ ...good, sub: 'MARK' }).replace('MARK', '\\ud83d\\ude00')).kind).toBe('active');
  });

  it('scope, client_id and sub are strings', () => {
    expect(rejected({ ...good, scope: ['orders:read'] })).toBe('token_scope_invalid');
    expect(rejected({ ...good, client_id: 5 })).toBe('token_client_id_invalid');
    expect(rejected({ ...good, client_id: '' })).toBe('token_client_id_invalid');
    expect(rejected({ ...good, sub: { id: 1 } })).toBe('token_sub_invalid');
    const { scope: _s, ...noScope } = good;
    expect(read(noScope)).toMatchObject({ kind: 'active', identity: { scopes: [] } });
  });
});
