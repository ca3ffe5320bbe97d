import { describe, expect, it } from 'vitest';
import { newIdentity } from '../../src/core/identity.ts';
import { newHeaderMap } from '../../src/core/header-map.ts';
import { UnsafeHeaderValueError } from '../../src/core/errors.ts';
import { HeaderPolicy } from '../../src/policy/headers.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { inheritsNothing } from '../support/objects.ts';

const policy = () =>
  new HeaderPolicy(
    parseConfig(`
headers:
  set: { x-user-id: subject, x-client-id: client_id, x-scopes: scopes, x-route: route }
routes:
  - { name: docs, match: { path_prefix: /docs }, public: true }
`).headers,
  );

describe('HeaderPolicy.identityHeaders', () => {
  const alice = newIdentity('jwt', { subject: 'alice', clientId: 'web', scopes: ['a', 'b'] });

  it('one frozen list per identity and route, rebuilt when the route changes', () => {
    const h = policy();
    const first = h.identityHeaders(alice, 'orders');
    expect(first).toEqual([
      { name: 'x-user-id', value: 'alice' },
      { name: 'x-client-id', value: 'web' },
      { name: 'x-scopes', value: 'a b' },
      { name: 'x-route', value: 'orders' },
    ]);
    expect(Object.isFrozen(first) && first.every((x) => Object.isFrozen(x))).toBe(true);
    expect(h.identityHeaders(alice, 'orders')).toBe(first);
    const admin = h.identityHeaders(alice, 'admin');
    expect(admin.at(-1)).toEqual({ name: 'x-route', value: 'admin' });
    expect(h.identityHeaders(alice, 'orders')).toEqual(first);
    // Another identity with the same fields is another object, with its own list.
    const twin = newIdentity('jwt', { subject: 'alice', clientId: 'web', scopes: ['a', 'b'] });
    expect(h.identityHeaders(twin, 'orders')).toEqual(first);
    expect(h.identityHeaders(newIdentity('jwt', { subject: 'bob', scopes: [] }), 'orders')).toEqual([
      { name: 'x-user-id', value: 'bob' },
      { name: 'x-route', value: 'orders' },
    ]);
  });

  it('without an identity (public routes): the route fields only, per route', () => {
    const h = policy();
    expect(h.identityHeaders(undefined, 'docs')).toEqual([{ name: 'x-route', value: 'docs' }]);
    expect(h.identityHeaders(undefined, 'docs')).toBe(h.identityHeaders(undefined, 'docs'));
    expect(h.identityHeaders(undefined, 'status')).toEqual([{ name: 'x-route', value: 'status' }]);
  });

  it('an unsafe value throws every time, never cached as a list', () => {
    const h = policy();
    const evil = newIdentity('jwt', { subject: 'a\r\nx-admin: 1', scopes: [] });
    expect(() => h.identityHeaders(evil, 'orders')).toThrow(UnsafeHeaderValueError);
    expect(() => h.identityHeaders(evil, 'orders')).toThrow(UnsafeHeaderValueError);
  });
});

/** Values an upstream can misread, and one of each kind of character outside the safe form. */
const UNSAFE = [
  'bob, admin',
  'bob,admin',
  'bob;role=admin',
  'bob\tadmin',
  'bob\u007f',
  'bob\u2028admin',
  'bob\u0085',
  'bøb',
  'bob\u00a0',
  'bob\u200b',
  '😀',
  ' bob',
  'bob ',
  'bob admin',
  '"bob"',
  'bob\\admin',
  'bob\u0000',
  'bob\r\nx-admin: 1',
];
const SAFE = [
  'alice',
  'auth0|123456',
  'user@example.com',
  'spiffe://prod/ns/a/sa/b',
  'a%2Cb',
  'x=1&y=2',
  "it's",
  '{id:1}',
  '~!#$&*()+/:<=>?@[]^`{|}',
];

const rule = (unsafe: string, extra = '') =>
  new HeaderPolicy(
    parseConfig(
      `headers: { set: { x-user-id: { from: subject, unsafe: ${unsafe}${extra} }, x-scopes: { from: scopes, unsafe: ${unsafe} } } }`,
    ).headers,
  );
const reasonOf = (h: HeaderPolicy, id: ReturnType<typeof newIdentity>) => {
  try {
    h.identityHeaders(id, 'r');
  } catch (e) {
    return (e as UnsafeHeaderValueError).reason;
  }
  return 'sent';
};

describe('identity values: the safe form (visible ASCII without " , ; \\, bounded)', () => {
  it('by default a value outside the safe form is refused (identity_value_unsafe); safe ones pass unchanged', () => {
    const h = policy();
    for (const v of UNSAFE)
      expect(reasonOf(h, newIdentity('jwt', { subject: v, scopes: [] })), JSON.stringify(v)).toBe(
        'identity_value_unsafe',
      );
    for (const v of SAFE)
      expect(h.identityHeaders(newIdentity('jwt', { subject: v, scopes: [] }), 'r')[0]).toEqual({
        name: 'x-user-id',
        value: v,
      });
    // Scopes: each one in the safe form, joined by single spaces.
    expect(reasonOf(h, newIdentity('jwt', { scopes: ['orders:read', 'a,b'] }))).toBe('identity_value_unsafe');
    expect(reasonOf(h, newIdentity('jwt', { scopes: ['orders:read', 'x;y'] }))).toBe('identity_value_unsafe');
  });

  it('bounded: 256 by default (scopes 4096), max_length per header, counted after encoding', () => {
    const h = policy();
    expect(reasonOf(h, newIdentity('jwt', { subject: 'a'.repeat(256), scopes: [] }))).toBe('sent');
    expect(reasonOf(h, newIdentity('jwt', { subject: 'a'.repeat(257), scopes: [] }))).toBe('identity_value_too_long');
    expect(reasonOf(h, newIdentity('jwt', { subject: 'a'.repeat(5000), scopes: [] }))).toBe('identity_value_too_long');
    expect(reasonOf(h, newIdentity('jwt', { scopes: Array.from({ length: 600 }, (_, i) => `scope:${i}`) }))).toBe(
      'identity_value_too_long',
    );
    expect(reasonOf(h, newIdentity('jwt', { scopes: Array.from({ length: 100 }, (_, i) => `scope:${i}`) }))).toBe(
      'sent',
    );
    const short = rule('reject', ', max_length: 8');
    expect(reasonOf(short, newIdentity('jwt', { subject: 'abcdefgh', scopes: [] }))).toBe('sent');
    expect(reasonOf(short, newIdentity('jwt', { subject: 'abcdefghi', scopes: [] }))).toBe('identity_value_too_long');
    // Encoded: "é" is 6 characters on the wire.
    const encoded = rule('percent_encode', ', max_length: 6');
    expect(reasonOf(encoded, newIdentity('jwt', { subject: 'é', scopes: [] }))).toBe('sent');
    expect(reasonOf(encoded, newIdentity('jwt', { subject: 'éa', scopes: [] }))).toBe('identity_value_too_long');
  });

  it('percent_encode: every value encoded, only unreserved characters left, and decoded back exactly', () => {
    const h = rule('percent_encode');
    for (const v of [...UNSAFE, ...SAFE, 'a%2Cb', '100%', 'a+b', "(it's)*!"]) {
      const [header] = h.identityHeaders(newIdentity('jwt', { subject: v, scopes: [] }), 'r');
      expect(header.value, JSON.stringify(v)).toMatch(/^([A-Za-z0-9._~-]|%[0-9A-F]{2})+$/);
      expect(decodeURIComponent(header.value)).toBe(v);
    }
    expect(h.identityHeaders(newIdentity('jwt', { subject: 'bob, admin', scopes: [] }), 'r')[0].value).toBe(
      'bob%2C%20admin',
    );
    // A `%` is encoded too, so a value that looks encoded cannot decode into another one.
    expect(h.identityHeaders(newIdentity('jwt', { subject: 'bob%2C%20admin', scopes: [] }), 'r')[0].value).toBe(
      'bob%252C%2520admin',
    );
    // Scopes: each encoded, spaces still separate them.
    expect(h.identityHeaders(newIdentity('jwt', { scopes: ['a,b', 'c d', 'e'] }), 'r')[0]).toEqual({
      name: 'x-scopes',
      value: 'a%2Cb c%20d e',
    });
  });

  it('a value with no UTF-8 form never becomes an identity (lone surrogates), and could not be encoded either', () => {
    for (const v of ['\ud800', 'bob\udfff', '\ude00\ud83d']) {
      expect(() => newIdentity('jwt', { subject: v, scopes: [] })).toThrow(
        expect.objectContaining({ reason: 'identity_value_invalid_unicode' }),
      );
      expect(() => newIdentity('oauth2', { clientId: v, scopes: [] })).toThrow(
        expect.objectContaining({ reason: 'identity_value_invalid_unicode' }),
      );
      expect(() => newIdentity('oauth2', { scopes: ['a', v] })).toThrow(
        expect.objectContaining({ reason: 'identity_value_invalid_unicode' }),
      );
    }
    expect(newIdentity('jwt', { subject: '\ud83d\ude00', scopes: [] }).subject).toBe('😀');
  });

  it('the config: field shorthand or { from, unsafe, max_length }; reject is the default; claims.<name> is a source', () => {
    const set = (yaml: string) => parseConfig(`headers: { set: ${yaml} }`).headers.set;
    expect(set('{ x-user-id: subject }')).toEqual({ 'x-user-id': 'subject' });
    expect(set('{ x-user-id: { from: subject } }')).toEqual({ 'x-user-id': { from: 'subject', unsafe: 'reject' } });
    expect(set('{ x-user-id: { from: subject, unsafe: percent_encode, max_length: 64 } }')).toEqual({
      'x-user-id': { from: 'subject', unsafe: 'percent_encode', max_length: 64 },
    });
    expect(set('{ x-email: claims.email }')).toEqual({ 'x-email': 'claims.email' });
    expect(set('{ x-roles: { from: claims.realm_access.roles, unsafe: percent_encode } }')).toEqual({
      'x-roles': { from: 'claims.realm_access.roles', unsafe: 'percent_encode' },
    });
    for (const bad of [
      '{ x-user-id: { from: subject, unsafe: allow } }',
      '{ x-user-id: { from: subject, max_length: 0 } }',
      '{ x-user-id: subjct }',
      '{ x-user-id: "claims." }',
      '{ x-user-id: "claims.a..b" }',
      '{ x-user-id: "claims[email]" }',
      '{ x-user-id: { from: subject, extra: 1 } }',
    ]) {
      expect(() => set(bad), bad).toThrow(/headers\.set\.x-user-id/);
    }
  });
});

describe('newHeaderMap', () => {
  it('inherits nothing: prototype-looking names are plain entries', () => {
    const m = newHeaderMap();
    expect(inheritsNothing(m)).toBe(true);
    expect(m['constructor']).toBeUndefined();
    expect(m['toString']).toBeUndefined();
    expect(m['__proto__']).toBeUndefined();
    m['constructor'] = 'c';
    m['__proto__'] = 'p';
    m['x-a'] = '1';
    expect(m['constructor']).toBe('c');
    expect(m['__proto__']).toBe('p');
    expect(inheritsNothing(m)).toBe(true);
    const names: string[] = [];
    for (const k in m) names.push(k);
    expect(names).toEqual(['constructor', '__proto__', 'x-a']);
    expect(Object.keys(m)).toEqual(names);
  });
});
