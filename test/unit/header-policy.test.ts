import { describe, expect, it } from 'vitest';
import { newIdentity } from '../../src/core/identity.ts';
import { newHeaderMap } from '../../src/core/header-map.ts';
import { HeaderPolicy, UnsafeHeaderValueError } from '../../src/policy/headers.ts';
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
