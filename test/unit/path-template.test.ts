// match.path_template (src/policy/path-template.ts): what matches, the values, and the templates
// the config refuses.
import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../src/core/paths.ts';
import { PolicyConfigError } from '../../src/policy/config-error.ts';
import { compilePathTemplate } from '../../src/policy/path-template.ts';

const WHERE = 'routes[3].match.path_template';
const t = (template: string, caseSensitive = false) => compilePathTemplate(template, WHERE, caseSensitive);
const values = (v: Readonly<Record<string, string>> | undefined) => (v === undefined ? undefined : { ...v });

/** The match for a raw request path, as the decision path will run it: normalize, then match. */
function matchRequest(
  template: string,
  rawPath: string,
  formatSuffix = false,
): Record<string, string> | string | undefined {
  const n = normalizePath(rawPath);
  if (!n.ok) return `400 ${n.reason}`;
  return values(t(template).match(n.path, undefined, formatSuffix));
}

function refused(template: string): string {
  try {
    t(template);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyConfigError);
    expect((e as PolicyConfigError).where).toBe(WHERE);
    return (e as PolicyConfigError).detail;
  }
  throw new Error(`compiled: ${template}`);
}

describe('matching', () => {
  const orders = '/v1/tenants/{tenant}/orders/{id}';

  it('{name} is exactly one non-empty segment', () => {
    expect(matchRequest(orders, '/v1/tenants/acme/orders/7')).toEqual({ tenant: 'acme', id: '7' });
    expect(matchRequest(orders, '/v1/tenants/acme/orders')).toBeUndefined();
    expect(matchRequest(orders, '/v1/tenants/acme/orders/7/items')).toBeUndefined();
    expect(matchRequest(orders, '/v1/tenants/orders/7')).toBeUndefined();
    expect(matchRequest(orders, '/v1/tenants//orders/7')).toBe('400 path_empty_segment');
    expect(values(t(orders).match('/v1/tenants//orders/7'))).toBeUndefined(); // even unnormalized
  });

  it('the query is not part of the path', () => {
    expect(matchRequest(orders, '/v1/tenants/acme/orders/7?x=/a/b')).toEqual({ tenant: 'acme', id: '7' });
  });

  it('the trailing-slash form matches as the path without it', () => {
    expect(matchRequest(orders, '/v1/tenants/acme/orders/7/')).toEqual({ tenant: 'acme', id: '7' });
    expect(matchRequest('/v1/files/{path...}', '/v1/files/a/b/')).toEqual({ path: 'a/b' });
  });

  it('a final {name...} takes one or more segments', () => {
    const files = '/v1/files/{path...}';
    expect(matchRequest(files, '/v1/files/a')).toEqual({ path: 'a' });
    expect(matchRequest(files, '/v1/files/a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(matchRequest(files, '/v1/files')).toBeUndefined();
    expect(matchRequest(files, '/v1/files/')).toBeUndefined();
    expect(matchRequest('/{all...}', '/x/y')).toEqual({ all: 'x/y' });
  });

  it('literals match in any case unless case-sensitive; values keep their case', () => {
    expect(matchRequest(orders, '/V1/Tenants/AcMe/ORDERS/7')).toEqual({ tenant: 'AcMe', id: '7' });
    const strict = t('/v1/Tenants/{tenant}', true);
    expect(values(strict.match('/v1/Tenants/AcMe'))).toEqual({ tenant: 'AcMe' });
    expect(strict.match('/v1/tenants/AcMe')).toBeUndefined();
    // The caller's lower-cased path is used when given (the route table lowers it once).
    expect(values(t('/v1/Tenants/{x}').match('/V1/TENANTS/Y', '/v1/tenants/y'))).toEqual({ x: 'Y' });
  });

  it('a literal is a whole segment', () => {
    expect(matchRequest(orders, '/v1/tenantsX/acme/orders/7')).toBeUndefined();
    expect(matchRequest('/v1/{a}/export', '/v1/x/exports')).toBeUndefined();
  });

  it('with formatSuffix (protected routes), a final literal also matches with a format suffix, as an exact path does', () => {
    const exp = '/v1/tenants/{tenant}/export';
    expect(matchRequest(exp, '/v1/tenants/acme/export.json', true)).toEqual({ tenant: 'acme' });
    expect(matchRequest(exp, '/v1/tenants/acme/export.json/', true)).toEqual({ tenant: 'acme' });
    expect(matchRequest(exp, '/v1/tenants/acme/export.json', false)).toBeUndefined();
    expect(matchRequest(exp, '/v1/tenants/acme/export.json/x', true)).toBeUndefined();
    // Only the last segment: an earlier literal with a suffix is another path.
    expect(matchRequest('/v1/tenants/{tenant}/orders/{id}', '/v1/tenants.json/acme/orders/7', true)).toBeUndefined();
    // A final variable simply takes the suffix as part of its value.
    expect(matchRequest('/v1/orders/{id}', '/v1/orders/7.json', true)).toEqual({ id: '7.json' });
  });

  it('a template without variables matches like an exact path, with no values', () => {
    const v = t('/v1/health').match('/v1/health');
    expect(v).toEqual({});
    expect(Object.isFrozen(v)).toBe(true);
  });

  it('values are an object without a prototype, a new one per match', () => {
    const tpl = t('/x/{constructor}/{__proto__}');
    const v = tpl.match('/x/a/b')!;
    expect(Object.getPrototypeOf(v)).toBe(null);
    expect(tpl.match('/x/a/b')).not.toBe(v);
    expect(Object.entries(v)).toEqual([
      ['constructor', 'a'],
      ['__proto__', 'b'],
    ]);
  });

  it('t.names lists the variables in order', () => {
    expect(t('/v1/tenants/{tenant}/files/{rest...}').names).toEqual(['tenant', 'rest']);
  });
});

describe('values are percent-decoded after matching on segments', () => {
  it('escapes that normalization keeps are decoded in the value', () => {
    expect(matchRequest('/v1/users/{email}', '/v1/users/a%40example.com')).toEqual({ email: 'a@example.com' });
    expect(matchRequest('/v1/tenants/{t}', '/v1/tenants/caf%C3%A9')).toEqual({ t: 'café' });
    expect(matchRequest('/v1/tenants/{t}', '/v1/tenants/%61cme')).toEqual({ t: 'acme' }); // normalization decodes unreserved
    expect(matchRequest('/v1/files/{p...}', '/v1/files/a%3Ab/c%2Cd')).toEqual({ p: 'a:b/c,d' });
  });

  it('an encoded / never reaches a value: the path is refused (400) before any route is matched', () => {
    expect(matchRequest('/v1/tenants/{tenant}/orders', '/v1/tenants/acme%2Fglobex/orders')).toBe(
      '400 path_encoded_separator',
    );
    expect(matchRequest('/v1/files/{p...}', '/v1/files/a%2fb')).toBe('400 path_encoded_separator');
    expect(matchRequest('/v1/tenants/{tenant}', '/v1/tenants/a%5Cb')).toBe('400 path_encoded_separator');
  });

  it('and a caller that skips normalization gets no match, never a value with a separator', () => {
    expect(t('/v1/tenants/{tenant}/orders').match('/v1/tenants/acme%2Fglobex/orders')).toBeUndefined();
    expect(t('/v1/files/{p...}').match('/v1/files/a/b%2Fc')).toBeUndefined();
    expect(t('/v1/x/{v}').match('/v1/x/a%5Cb')).toBeUndefined();
    expect(t('/v1/x/{v}').match('/v1/x/a%00b')).toBeUndefined();
    expect(t('/v1/x/{v}').match('/v1/x/%E0%A4')).toBeUndefined(); // not UTF-8
    expect(t('/v1/x/{v}').match('v1/x/a')).toBeUndefined(); // not absolute
  });
});

describe('templates the config refuses', () => {
  it.each([
    ['v1/{a}', /starts with \//],
    ['/', /at least one segment; for the root use match.path/],
    ['/v1/{a}/', /does not end with \//],
    ['/v1//{a}', /no empty segments/],
    ['/v1/{a}?x=1', /without \? or #/],
    ['/v1/{id}/{id}', /the variable \{id\} appears twice/],
    ['/v1/{}', /a variable needs a name, e\.g\. \{id\}/],
    ['/v1/order-{id}', /"order-\{id\}": a variable is a whole segment/],
    ['/v1/{id}.json', /a variable is a whole segment/],
    ['/v1/{a}{b}', /a variable is a whole segment/],
    ['/v1/{a', /a variable is a whole segment/],
    ['/v1/a}', /a variable is a whole segment/],
    ['/v1/{rest...}/more', /\{rest\.\.\.\} takes the rest of the path: it must be the last segment/],
    ['/v1/{rest...}/{id}', /it must be the last segment/],
    ['/v1/{1st}', /a variable name is letters, digits and _/],
    ['/v1/{tenant-id}', /a variable name is letters, digits and _/],
    ['/v1/{a b}', /a variable name is letters, digits and _/],
    ['/v1/{..}', /a variable name is letters, digits and _/],
    ['/v1/%7Eadmin/{a}', /the segment "%7Eadmin" is written "~admin" in a normalized path; write it that way/],
    ['/v1/caf%c3%a9/{a}', /is written "caf%C3%A9"/],
    ['/v1/a%2Fb/{a}', /no request path can match the segment "a%2Fb" \(path_encoded_separator\)/],
    ['/v1/../{a}', /path_dot_segment/],
    ['/v1/admin./{a}', /path_trailing_dot/],
    ['/v1/a b/{a}', /path_bad_character/],
    ['/v1/a;b/{a}', /path_bad_character/],
    [`/${'a'.repeat(1100)}`, /at most 1024 characters/],
  ])('%s', (template, message) => {
    expect(refused(template)).toMatch(message);
  });

  it('the message names the config path', () => {
    expect(() => t('/v1/{id}/{id}')).toThrow(/^routes\[3\]\.match\.path_template: the variable \{id\} appears twice$/);
  });
});
