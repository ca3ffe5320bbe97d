// Claims (src/policy/claims.ts): the bounds a claim set must keep to become identity.claims, and
// header values read from claims, through the identity-value safety rules of headers.ts.
import { describe, expect, it } from 'vitest';
import { newIdentity } from '../../src/core/identity.ts';
import {
  checkClaims,
  claimHeaderValue,
  DEFAULT_CLAIMS_LIMITS,
  isClaimReference,
  parseClaimReference,
} from '../../src/policy/claims.ts';
import { PolicyConfigError } from '../../src/policy/config-error.ts';
import { UnsafeHeaderValueError } from '../../src/core/errors.ts';
import { HeaderPolicy } from '../../src/policy/headers.ts';
import { parseConfig } from '../../src/policy/load.ts';

describe('checkClaims', () => {
  it('accepts a JSON object within the bounds', () => {
    expect(
      checkClaims({ sub: 'alice', roles: ['a', 'b'], realm_access: { roles: ['x'] }, n: 1.5, ok: true, none: null }),
    ).toEqual({ ok: true });
    expect(checkClaims({})).toEqual({ ok: true });
    expect(checkClaims(Object.create(null))).toEqual({ ok: true });
  });

  it('the bound is the bytes of the JSON text (UTF-8): exactly at it passes, one over fails', () => {
    const claims = {
      sub: 'alice',
      roles: ['admin', 'reader'],
      nested: { a: [1, 2, { b: null }], é: 'ü' },
      flag: false,
      empty: [],
      o: {},
    };
    const bytes = Buffer.byteLength(JSON.stringify(claims));
    expect(checkClaims(claims, { maxBytes: bytes, maxDepth: 8 })).toEqual({ ok: true });
    expect(checkClaims(claims, { maxBytes: bytes - 1, maxDepth: 8 })).toEqual({
      ok: false,
      reason: 'claims_too_large',
    });
    // The text's own length, when given, is compared first.
    expect(checkClaims(claims, { maxBytes: bytes, maxDepth: 8 }, bytes + 1)).toEqual({
      ok: false,
      reason: 'claims_too_large',
    });
    expect(checkClaims(claims, { maxBytes: bytes, maxDepth: 8 }, bytes)).toEqual({ ok: true });
  });

  it('the depth bound: the claims object is depth 1', () => {
    const three = { a: { b: { c: 1 } } };
    expect(checkClaims(three, { maxBytes: 1000, maxDepth: 3 })).toEqual({ ok: true });
    expect(checkClaims(three, { maxBytes: 1000, maxDepth: 2 })).toEqual({ ok: false, reason: 'claims_too_deep' });
    expect(checkClaims({ a: [[1]] }, { maxBytes: 1000, maxDepth: 2 })).toEqual({
      ok: false,
      reason: 'claims_too_deep',
    });
  });

  it('a 1 MB claim set is refused, cheaply', () => {
    const big: Record<string, string> = {};
    for (let i = 0; i < 20_000; i++) big[`claim_${i}`] = 'x'.repeat(40);
    expect(JSON.stringify(big).length).toBeGreaterThan(1_000_000);
    // The walk stops at the bound: it reads the values of about 700 of the 20,000 members
    // (JSON.stringify would read all of them). Counted through a proxy, which sees every read.
    let reads = 0;
    const counted = new Proxy(big, { get: (target, key, receiver) => (reads++, Reflect.get(target, key, receiver)) });
    expect(checkClaims(counted)).toEqual({ ok: false, reason: 'claims_too_large' });
    expect(reads).toBeGreaterThan(500);
    expect(reads).toBeLessThan(1000);
    // With the length of the text it was parsed from: no walk at all.
    const text = JSON.stringify(big);
    const parsed = JSON.parse(text);
    const textBytes = Buffer.byteLength(text);
    const t2 = performance.now();
    let refused = 0;
    for (let i = 0; i < 1000; i++) if (!checkClaims(parsed, DEFAULT_CLAIMS_LIMITS, textBytes).ok) refused++;
    expect(performance.now() - t2).toBeLessThan(50);
    expect(refused).toBe(1000);
    // One 1 MB string, and a list of 250,000 short strings.
    expect(checkClaims({ s: 'y'.repeat(1_000_000) })).toEqual({ ok: false, reason: 'claims_too_large' });
    expect(checkClaims({ l: Array.from({ length: 250_000 }, () => 'ab') })).toEqual({
      ok: false,
      reason: 'claims_too_large',
    });
  });

  it('100-deep nesting is refused at the default depth; 100,000-deep without a stack overflow', () => {
    const nest = (n: number, inArrays = false) => {
      let v: unknown = 'leaf';
      for (let i = 0; i < n; i++) v = inArrays ? [v] : { a: v };
      return v;
    };
    expect(DEFAULT_CLAIMS_LIMITS.maxDepth).toBeLessThan(100);
    expect(checkClaims(nest(100))).toEqual({ ok: false, reason: 'claims_too_deep' });
    expect(checkClaims(nest(100), { maxBytes: 100_000, maxDepth: 101 })).toEqual({ ok: true });
    expect(checkClaims(nest(100_000))).toEqual({ ok: false, reason: 'claims_too_deep' });
    expect(checkClaims({ x: nest(100_000, true) }, { maxBytes: 10_000_000, maxDepth: 1_000_000 })).toEqual({
      ok: true,
    });
  });

  it('refuses what is not a JSON object', () => {
    for (const bad of [null, undefined, 'x', 1, ['a'], new Date(), new Map()])
      expect(checkClaims(bad)).toEqual({ ok: false, reason: 'claims_invalid' });
    for (const bad of [
      { f: () => 1 },
      { n: Number.NaN },
      { i: Infinity },
      { b: 1n },
      { l: [undefined] },
      { d: new Date() },
      { s: Symbol('x') },
    ]) {
      expect(checkClaims(bad)).toEqual({ ok: false, reason: 'claims_invalid' });
    }
  });

  it('an undefined member is left out, as JSON.stringify does', () => {
    expect(checkClaims({ a: undefined, b: 'x' }, { maxBytes: Buffer.byteLength('{"b":"x"}'), maxDepth: 2 })).toEqual({
      ok: true,
    });
  });

  it('a member named __proto__ (JSON.parse makes it an own member) is measured like any other', () => {
    const c = JSON.parse('{"__proto__": {"admin": true}}');
    expect(checkClaims(c, { maxBytes: 1000, maxDepth: 2 })).toEqual({ ok: true });
    expect(checkClaims(c, { maxBytes: 1000, maxDepth: 1 })).toEqual({ ok: false, reason: 'claims_too_deep' });
  });
});

describe('claim references', () => {
  const where = 'headers.set.x-tenant';

  it('are recognized by their prefix', () => {
    expect(isClaimReference('claims.email')).toBe(true);
    expect(isClaimReference('claims["a.b"]')).toBe(true);
    expect(isClaimReference('subject')).toBe(false);
    expect(isClaimReference('claims')).toBe(false);
  });

  it('dotted names and quoted names', () => {
    expect(parseClaimReference('claims.email', where)).toEqual(['email']);
    expect(parseClaimReference('claims.realm_access.roles', where)).toEqual(['realm_access', 'roles']);
    expect(parseClaimReference('claims.cognito:groups', where)).toEqual(['cognito:groups']);
    expect(parseClaimReference('claims["https://example.com/roles"]', where)).toEqual(['https://example.com/roles']);
    expect(parseClaimReference("claims['a b'].c", where)).toEqual(['a b', 'c']);
  });

  it.each([
    ['claims.', /expected a member name after the dot at column 7/],
    ['claims..a', /expected a member name/],
    ['claims.a.', /expected a member name/],
    ['claims.a[b]', /a bracketed member name is quoted/],
    ['claims["a"', /unterminated \["name"\]/],
    ['claims["a"x', /unterminated/],
    ['claims[""]', /an empty member name/],
    ['claims.a b', /unexpected " " at column 9/],
    [`claims${'.a'.repeat(17)}`, /at most 16 members/],
    [`claims.${'a'.repeat(300)}`, /at most 256 characters/],
    ['subject', /a claim reference starts with claims\./],
  ])('refuses %s', (ref, message) => {
    try {
      parseClaimReference(ref, where);
      throw new Error('parsed');
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyConfigError);
      expect((e as PolicyConfigError).where).toBe(where);
      expect((e as PolicyConfigError).detail).toMatch(message);
    }
  });
});

describe('claimHeaderValue', () => {
  // The identity-value safety rules are headers.ts's own: the two modes of a `headers.set` rule,
  // applied through a HeaderPolicy (the wiring passes its safe-form function directly).
  const ruleFor = (rule: string) =>
    new HeaderPolicy(
      parseConfig(`
headers:
  set: { x-v: ${rule} }
routes:
  - { name: docs, match: { path_prefix: /docs }, public: true }
`).headers,
    );
  const viaRule = (policy: HeaderPolicy) => (value: string) =>
    policy.identityHeaders(newIdentity('jwt', { subject: value, scopes: [] }), 'r')[0].value;
  const reject = viaRule(ruleFor('subject'));
  const encode = viaRule(ruleFor('{ from: subject, unsafe: percent_encode }'));
  const asIs = (v: string) => v;
  const read = (claims: Record<string, unknown> | undefined, ref: string, safeForm = asIs) =>
    claimHeaderValue(claims, parseClaimReference(ref, 'headers.set.x-v'), safeForm);

  it('strings as they are, numbers and booleans as JSON text, lists of strings space-joined', () => {
    const c = {
      email: 'a@example.com',
      n: 42,
      f: 1.5,
      big: 1e21,
      neg: -3,
      yes: true,
      no: false,
      roles: ['admin', 'reader'],
    };
    expect(read(c, 'claims.email')).toEqual({ ok: true, value: 'a@example.com' });
    expect(read(c, 'claims.n')).toEqual({ ok: true, value: '42' });
    expect(read(c, 'claims.f')).toEqual({ ok: true, value: '1.5' });
    expect(read(c, 'claims.big')).toEqual({ ok: true, value: '1e+21' });
    expect(read(c, 'claims.neg')).toEqual({ ok: true, value: '-3' });
    expect(read(c, 'claims.yes')).toEqual({ ok: true, value: 'true' });
    expect(read(c, 'claims.no')).toEqual({ ok: true, value: 'false' });
    expect(read(c, 'claims.roles')).toEqual({ ok: true, value: 'admin reader' });
  });

  it('nested and namespaced members', () => {
    const c = { realm_access: { roles: ['a'] }, 'https://example.com/tenant': 'acme' };
    expect(read(c, 'claims.realm_access.roles')).toEqual({ ok: true, value: 'a' });
    expect(read(c, 'claims["https://example.com/tenant"]')).toEqual({ ok: true, value: 'acme' });
  });

  it('anything else leaves the header unset, with the reason', () => {
    const c = { obj: { a: 1 }, mixed: ['a', 1], withEmpty: ['a', ''], empty: '', none: [], nul: null, s: 'x' };
    expect(read(c, 'claims.obj')).toEqual({ ok: false, reason: 'claim_unsupported_type' });
    expect(read(c, 'claims.mixed')).toEqual({ ok: false, reason: 'claim_unsupported_type' });
    expect(read(c, 'claims.withEmpty')).toEqual({ ok: false, reason: 'claim_unsupported_type' });
    expect(read(c, 'claims.empty')).toEqual({ ok: false, reason: 'claim_empty' });
    expect(read(c, 'claims.none')).toEqual({ ok: false, reason: 'claim_empty' });
    expect(read(c, 'claims.nul')).toEqual({ ok: false, reason: 'claim_absent' });
    expect(read(c, 'claims.missing')).toEqual({ ok: false, reason: 'claim_absent' });
    expect(read(c, 'claims.s.length')).toEqual({ ok: false, reason: 'claim_absent' }); // no members of a string
    expect(read(c, 'claims.mixed.0')).toEqual({ ok: false, reason: 'claim_absent' }); // nor of a list
    expect(read(undefined, 'claims.s')).toEqual({ ok: false, reason: 'claim_absent' });
  });

  it('inherited names are not claims', () => {
    expect(read({}, 'claims.constructor')).toEqual({ ok: false, reason: 'claim_absent' });
    expect(read({}, 'claims.__proto__')).toEqual({ ok: false, reason: 'claim_absent' });
    expect(read({ a: {} }, 'claims.a.toString')).toEqual({ ok: false, reason: 'claim_absent' });
  });

  it('a claim with CR/LF: refused by the default rule, percent-encoded by percent_encode', () => {
    const c = { name: 'bob\r\nx-admin: true', roles: ['a b', 'c\nd'] };
    expect(() => read(c, 'claims.name', reject)).toThrow(UnsafeHeaderValueError);
    expect(read(c, 'claims.name', encode)).toEqual({ ok: true, value: 'bob%0D%0Ax-admin%3A%20true' });
    // Each list item on its own, so the spaces still separate the items.
    expect(() => read(c, 'claims.roles', reject)).toThrow(UnsafeHeaderValueError);
    expect(read(c, 'claims.roles', encode)).toEqual({ ok: true, value: 'a%20b c%0Ad' });
  });

  it('the same rules for every other character an upstream could misread', () => {
    expect(() => read({ t: 'a,b' }, 'claims.t', reject)).toThrow(UnsafeHeaderValueError);
    expect(() => read({ t: 'café' }, 'claims.t', reject)).toThrow(UnsafeHeaderValueError);
    expect(read({ t: 'café' }, 'claims.t', encode)).toEqual({ ok: true, value: 'caf%C3%A9' });
    expect(read({ t: 'acme-7' }, 'claims.t', reject)).toEqual({ ok: true, value: 'acme-7' });
    expect(read({ t: 1e21 }, 'claims.t', encode)).toEqual({ ok: true, value: '1e%2B21' });
  });
});
