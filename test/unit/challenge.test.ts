// WWW-Authenticate challenges (src/resources/challenge.ts): RFC 9110 §11.2 quoting, parsing the
// headers Portcullis builds, adding RFC 9728 / RFC 9470 parameters to every OAuth scheme.
import { describe, expect, it } from 'vitest';
import {
  addChallengeParams,
  ChallengeValueError,
  formatChallenge,
  formatChallenges,
  parseChallenges,
  quotedString,
  resourceChallengeParams,
} from '../../src/resources/challenge.ts';

const PRM = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';

describe('quotedString (RFC 9110 §5.6.4)', () => {
  it('escapes quote and backslash, and nothing else', () => {
    expect(quotedString('plain value')).toBe('"plain value"');
    expect(quotedString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quotedString('\t!#~')).toBe('"\t!#~"');
    expect(quotedString('')).toBe('""');
  });

  it('refuses what no header may carry: CR, LF, NUL, DEL, other controls, non-ASCII', () => {
    for (const v of [
      'a\r\nSet-Cookie: x=1',
      'a\nb',
      'a\rb',
      'a\u0000b',
      'a\u007fb',
      'a\u001bb',
      'é',
      'a\u2028b',
      '\ud800',
    ]) {
      expect(() => quotedString(v), JSON.stringify(v)).toThrow(ChallengeValueError);
    }
  });

  it('a hostile value stays one value: parsing the header back gives exactly the value and no extra parameter', () => {
    const hostile = 'x", error="none", scope="admin\\';
    const header = formatChallenge({
      scheme: 'Bearer',
      params: [
        ['realm', hostile],
        ['error', 'invalid_token'],
      ],
    });
    expect(header).toBe('Bearer realm="x\\", error=\\"none\\", scope=\\"admin\\\\", error="invalid_token"');
    expect(parseChallenges(header)).toEqual([
      {
        scheme: 'Bearer',
        params: [
          ['realm', hostile],
          ['error', 'invalid_token'],
        ],
      },
    ]);
  });
});

describe('formatChallenge', () => {
  it('writes scheme, then auth-params separated by ", "', () => {
    expect(formatChallenge({ scheme: 'Bearer', params: [] })).toBe('Bearer');
    expect(formatChallenge({ scheme: 'DPoP', params: [['algs', 'ES256 PS256']] })).toBe('DPoP algs="ES256 PS256"');
    expect(
      formatChallenges([
        { scheme: 'Bearer', params: [] },
        { scheme: 'DPoP', params: [['algs', 'ES256']] },
      ]),
    ).toBe('Bearer, DPoP algs="ES256"');
  });

  it('refuses a scheme or parameter name that is not a token, and a parameter named twice (any case)', () => {
    expect(() => formatChallenge({ scheme: 'Bea rer', params: [] })).toThrow(ChallengeValueError);
    expect(() => formatChallenge({ scheme: 'Bearer', params: [['re alm', 'x']] })).toThrow(ChallengeValueError);
    expect(() => formatChallenge({ scheme: 'Bearer', params: [['a=b', 'x']] })).toThrow(ChallengeValueError);
    expect(() =>
      formatChallenge({
        scheme: 'Bearer',
        params: [
          ['scope', 'a'],
          ['Scope', 'b'],
        ],
      }),
    ).toThrow(/twice/);
  });
});

describe('parseChallenges', () => {
  it('reads several challenges in one header, commas inside quoted strings included', () => {
    expect(parseChallenges('Bearer realm="a, b", error="invalid_token", DPoP algs="ES256 PS256"')).toEqual([
      {
        scheme: 'Bearer',
        params: [
          ['realm', 'a, b'],
          ['error', 'invalid_token'],
        ],
      },
      { scheme: 'DPoP', params: [['algs', 'ES256 PS256']] },
    ]);
  });

  it('reads token68 challenges, bare schemes, token values, BWS around "=", and empty list elements', () => {
    expect(parseChallenges(' , Basic dXNlcjpwdw==, Bearer ,, DPoP algs = ES256 , Negotiate')).toEqual([
      { scheme: 'Basic', params: [], token68: 'dXNlcjpwdw==' },
      { scheme: 'Bearer', params: [] },
      { scheme: 'DPoP', params: [['algs', 'ES256']] },
      { scheme: 'Negotiate', params: [] },
    ]);
  });

  it('unescapes quoted-pairs', () => {
    expect(parseChallenges('Bearer realm="a\\"b\\\\c\\d"')[0].params).toEqual([['realm', 'a"b\\cd']]);
  });

  it('throws on what is not the grammar: junk after a parameter, a missing value, an open quote, a raw control', () => {
    // (`Bearer realm=` alone is a token68, `realm=`, so it parses; a parameter after it does not.)
    for (const h of [
      'Bearer realm="x" junk',
      'Bearer realm=, error="x"',
      'Bearer realm="x',
      'Bearer realm="a\nb"',
      '"Bearer"',
      'Bearer realm="x", error=',
    ]) {
      expect(() => parseChallenges(h), h).toThrow();
    }
  });
});

describe('addChallengeParams', () => {
  it('adds resource_metadata to every Bearer and DPoP challenge (RFC 9728 §5.1), not to other schemes', () => {
    const header = 'Basic realm="x", Bearer realm="portcullis", error="invalid_token", DPoP algs="ES256"';
    expect(addChallengeParams(header, [['resource_metadata', PRM]])).toBe(
      `Basic realm="x", Bearer realm="portcullis", error="invalid_token", resource_metadata="${PRM}", DPoP algs="ES256", resource_metadata="${PRM}"`,
    );
  });

  it('limits to the schemes asked for, case-insensitively', () => {
    expect(addChallengeParams('bearer realm="x", DPoP algs="ES256"', [['scope', 'a b']], { schemes: ['BEARER'] })).toBe(
      'bearer realm="x", scope="a b", DPoP algs="ES256"',
    );
  });

  it('replaces a parameter already there (names compared in any case): each occurs once per challenge', () => {
    expect(addChallengeParams('Bearer realm="x", error="insufficient_scope", Scope="a"', [['scope', 'a b c']])).toBe(
      'Bearer realm="x", error="insufficient_scope", Scope="a b c"',
    );
  });

  it('leaves a token68 challenge alone, and an absent header absent unless asked to create one', () => {
    expect(addChallengeParams('Bearer abc==', [['resource_metadata', PRM]])).toBe('Bearer abc==');
    expect(addChallengeParams(undefined, [['resource_metadata', PRM]])).toBeUndefined();
    expect(addChallengeParams('', [['resource_metadata', PRM]])).toBe('');
    expect(addChallengeParams(undefined, [['resource_metadata', PRM]], { createScheme: 'Bearer' })).toBe(
      `Bearer resource_metadata="${PRM}"`,
    );
    // Only DPoP asked for, only Basic present: a DPoP challenge is added after it.
    expect(
      addChallengeParams('Basic realm="x"', [['resource_metadata', PRM]], { schemes: ['DPoP'], createScheme: 'DPoP' }),
    ).toBe(`Basic realm="x", DPoP resource_metadata="${PRM}"`);
  });

  it("the decision table's insufficient_scope challenge gains the whole scope list and the metadata URL", () => {
    const table = 'Bearer realm="portcullis", error="insufficient_scope", scope="mcp:use"';
    const params = resourceChallengeParams({ scope: ['mcp:use', 'files:delete', 'mcp:use'], resourceMetadata: PRM });
    expect(addChallengeParams(table, params)).toBe(
      `Bearer realm="portcullis", error="insufficient_scope", scope="mcp:use files:delete", resource_metadata="${PRM}"`,
    );
  });
});

describe('resourceChallengeParams', () => {
  it('scope, acr_values, max_age, resource_metadata, in that order; lists deduplicated and space-separated', () => {
    expect(
      resourceChallengeParams({
        resourceMetadata: PRM,
        maxAge: 300,
        acrValues: ['urn:mfa', 'urn:hwk', 'urn:mfa'],
        scope: ['a', 'b'],
      }),
    ).toEqual([
      ['scope', 'a b'],
      ['acr_values', 'urn:mfa urn:hwk'],
      ['max_age', '300'],
      ['resource_metadata', PRM],
    ]);
    expect(resourceChallengeParams({ scope: [], acrValues: [] })).toEqual([]);
    expect(resourceChallengeParams({ maxAge: 0 })).toEqual([['max_age', '0']]);
  });

  it('refuses a scope or ACR value a client would split wrongly, and a max_age that is not a non-negative integer', () => {
    for (const bad of ['a b', 'a"b', 'a\\b', '', 'é', 'a\nb']) {
      expect(() => resourceChallengeParams({ scope: [bad] }), JSON.stringify(bad)).toThrow(ChallengeValueError);
      expect(() => resourceChallengeParams({ acrValues: [bad] }), JSON.stringify(bad)).toThrow(ChallengeValueError);
    }
    for (const bad of [-1, 1.5, Number.NaN, Infinity])
      expect(() => resourceChallengeParams({ maxAge: bad })).toThrow(ChallengeValueError);
  });
});
