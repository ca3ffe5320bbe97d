// Route conditions in CEL (src/policy/conditions): the cookbook of docs/policy.md as conditions,
// what the config refuses and with which path, and how evaluation fails (closed, never throwing).
import { describe, expect, it } from 'vitest';
import { PolicyConfigError } from '../../src/policy/config-error.ts';
import {
  buildActivation,
  compileCondition,
  compileConditions,
  evaluateAll,
  parseQueryMap,
  type ConditionIdentityInput,
  type ConditionRequestInput,
  type ConditionResult,
  ipInCidr,
  isTimeZone,
  parseCidr,
} from '../../src/policy/conditions/index.ts';
import { compilePathTemplate } from '../../src/policy/path-template.ts';
import { compileHostPattern } from '../../src/policy/host-pattern.ts';
import { normalizePath } from '../../src/core/paths.ts';

const headers = (h: Record<string, string> = {}) => Object.assign(Object.create(null) as Record<string, string>, h);

function request(over: Partial<ConditionRequestInput> = {}): ConditionRequestInput {
  return {
    method: 'GET',
    host: 'api.example.com',
    path: '/v1/orders/7',
    query: '',
    headers: headers(),
    sourceIp: '10.1.2.3',
    contextExtensions: {},
    ...over,
  };
}

function jwtIdentity(
  claims: Record<string, unknown>,
  over: Partial<ConditionIdentityInput> = {},
): ConditionIdentityInput {
  return {
    method: 'jwt',
    subject: 'alice',
    clientId: 'web',
    scopes: ['orders:read'],
    issuer: 'https://idp.example.com',
    claims,
    ...over,
  };
}

const NOW = new Date('2026-12-07T10:30:00Z'); // a Monday; 11:30 in Berlin (CET)

/** Compiles and evaluates one condition. */
function run(
  expr: string,
  req: ConditionRequestInput,
  identity: ConditionIdentityInput | undefined,
  now = NOW,
): ConditionResult {
  return compileCondition(expr, 'routes[0].when[0]').evaluate(buildActivation(req, identity, now));
}
const holds = { ok: true, value: true };
const fails = { ok: true, value: false };
const errs = (code: string) => ({ ok: false, error: expect.objectContaining({ code }) });

/** The config error compileCondition throws, as { where, detail }. */
function configError(expr: string, where = 'routes[2].when[1]'): { where: string; detail: string } {
  try {
    compileCondition(expr, where);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyConfigError);
    const err = e as PolicyConfigError;
    expect(err.message).toBe(`${err.where}: ${err.detail}`);
    return { where: err.where, detail: err.detail };
  }
  throw new Error(`compiled: ${expr}`);
}

describe('cookbook', () => {
  describe('admin-only methods by role', () => {
    const expr =
      "request.method in ['GET', 'HEAD'] || (has(identity.claims.roles) && 'admin' in identity.claims.roles)";

    it('reads are open, writes need the admin role', () => {
      expect(run(expr, request({ method: 'GET' }), jwtIdentity({ roles: ['viewer'] }))).toEqual(holds);
      expect(run(expr, request({ method: 'DELETE' }), jwtIdentity({ roles: ['viewer', 'admin'] }))).toEqual(holds);
      expect(run(expr, request({ method: 'DELETE' }), jwtIdentity({ roles: ['viewer'] }))).toEqual(fails);
      expect(run(expr, request({ method: 'DELETE' }), jwtIdentity({}))).toEqual(fails);
    });

    it('a roles claim of the wrong type is an error, not a match on a substring', () => {
      // "superadmin" contains "admin"; `in` on a string is not a substring test.
      expect(run(expr, request({ method: 'DELETE' }), jwtIdentity({ roles: 'superadmin' }))).toEqual(
        errs('no_such_overload'),
      );
    });

    it('without the has() guard, a token without roles is an error (a deny, reason condition_error)', () => {
      expect(run("'admin' in identity.claims.roles", request(), jwtIdentity({}))).toEqual(errs('no_such_key'));
    });
  });

  describe('tenant isolation by path', () => {
    const template = compilePathTemplate('/v1/tenants/{tenant}/orders/{id}', 'routes[0].match.path_template');
    const condition = compileCondition('request.params.tenant == identity.claims.tenant', 'routes[0].when[0]');
    const check = (rawPath: string, claims: Record<string, unknown>) => {
      const n = normalizePath(rawPath);
      if (!n.ok) return `400 ${n.reason}`;
      const params = template.match(n.path, undefined, true);
      if (!params) return 'no match';
      return condition.evaluate(buildActivation(request({ path: n.path, params }), jwtIdentity(claims), NOW));
    };

    it("the caller's own tenant only", () => {
      expect(check('/v1/tenants/acme/orders/7', { tenant: 'acme' })).toEqual(holds);
      expect(check('/v1/tenants/globex/orders/7', { tenant: 'acme' })).toEqual(fails);
      expect(check('/v1/tenants/ACME/orders/7', { tenant: 'acme' })).toEqual(fails); // values keep their case
      expect(check('/v1/tenants/acme/orders/7', {})).toEqual(errs('no_such_key'));
    });

    it('an encoded / cannot smuggle another tenant in: the path is refused before any match', () => {
      expect(check('/v1/tenants/acme%2F..%2Fglobex/orders/7', { tenant: 'acme' })).toBe('400 path_encoded_separator');
      expect(check('/v1/tenants/acme%2Fx/orders/7', { tenant: 'acme/x' })).toBe('400 path_encoded_separator');
    });

    it('values are percent-decoded', () => {
      expect(check('/v1/tenants/caf%C3%A9/orders/7', { tenant: 'café' })).toEqual(holds);
    });
  });

  describe('tenant isolation by host', () => {
    const host = compileHostPattern('*.api.example.com', 'routes[0].match.host');
    const expr = "request.host == identity.claims.tenant + '.api.example.com'";

    it('a tenant reaches its own subdomain only', () => {
      expect(host.matches('acme.api.example.com')).toBe(true);
      expect(run(expr, request({ host: 'acme.api.example.com' }), jwtIdentity({ tenant: 'acme' }))).toEqual(holds);
      expect(run(expr, request({ host: 'globex.api.example.com' }), jwtIdentity({ tenant: 'acme' }))).toEqual(fails);
    });

    it('the split form reads the label', () => {
      const split = "request.host.split('.')[0] == identity.claims.tenant";
      expect(run(split, request({ host: 'acme.api.example.com' }), jwtIdentity({ tenant: 'acme' }))).toEqual(holds);
      expect(run(split, request({ host: 'globex.api.example.com' }), jwtIdentity({ tenant: 'acme' }))).toEqual(fails);
    });
  });

  describe('an IP allow-list on a public route', () => {
    const expr = "request.source_ip.inCidr(['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32'])";

    it('inside the ranges only; no identity needed', () => {
      expect(run(expr, request({ sourceIp: '10.200.0.1' }), undefined)).toEqual(holds);
      expect(run(expr, request({ sourceIp: '192.168.1.1' }), undefined)).toEqual(holds);
      expect(run(expr, request({ sourceIp: '2001:db8::1' }), undefined)).toEqual(holds);
      expect(run(expr, request({ sourceIp: '::ffff:10.0.0.1' }), undefined)).toEqual(holds); // IPv4-mapped
      expect(run(expr, request({ sourceIp: '11.0.0.1' }), undefined)).toEqual(fails);
      expect(run(expr, request({ sourceIp: '2001:db9::1' }), undefined)).toEqual(fails);
      expect(run(expr, request({ sourceIp: '172.16.0.1' }), undefined)).toEqual(fails);
    });

    it('an address that cannot be read is an error, so a deny-list never allows it', () => {
      expect(run(expr, request({ sourceIp: 'unknown' }), undefined)).toEqual(errs('invalid_ip'));
      expect(run(`!(${expr})`, request({ sourceIp: '' }), undefined)).toEqual(errs('invalid_ip'));
      expect(run(`!(${expr})`, request({ sourceIp: '010.0.0.1' }), undefined)).toEqual(errs('invalid_ip'));
    });

    it('a range from an API key record is read at run time; a bad one is an error', () => {
      const key = (net: string): ConditionIdentityInput => ({
        method: 'api-key',
        clientId: 'reports',
        scopes: [],
        keyId: 'k1',
        claims: { network: net },
      });
      const e = 'request.source_ip.inCidr(identity.claims.network)';
      expect(run(e, request({ sourceIp: '10.1.2.3' }), key('10.1.0.0/16'))).toEqual(holds);
      expect(run(e, request({ sourceIp: '10.2.2.3' }), key('10.1.0.0/16'))).toEqual(fails);
      expect(run(e, request(), key('10.1.2.3/8'))).toEqual(errs('invalid_cidr'));
      expect(run(e, request(), key('nonsense'))).toEqual(errs('invalid_cidr'));
    });
  });

  describe('business hours', () => {
    const zone = "'Europe/Berlin'";
    const expr = `now.localDayOfWeek(${zone}) >= 1 && now.localDayOfWeek(${zone}) <= 5 && now.localHours(${zone}) >= 9 && now.localHours(${zone}) < 17`;
    const at = (iso: string) => run(expr, request(), jwtIdentity({}), new Date(iso));

    it('Monday to Friday, 9:00 to 17:00 Berlin time, summer and winter', () => {
      expect(at('2026-12-07T07:59:59Z')).toEqual(fails); // Monday 08:59:59 CET
      expect(at('2026-12-07T08:00:00Z')).toEqual(holds); // Monday 09:00 CET
      expect(at('2026-12-11T15:59:59Z')).toEqual(holds); // Friday 16:59:59 CET
      expect(at('2026-12-11T16:00:00Z')).toEqual(fails); // Friday 17:00 CET
      expect(at('2026-12-12T10:00:00Z')).toEqual(fails); // Saturday
      expect(at('2026-07-06T07:30:00Z')).toEqual(holds); // Monday 09:30 CEST
      expect(at('2026-07-06T15:30:00Z')).toEqual(fails); // Monday 17:30 CEST
      expect(at('2026-12-06T22:30:00Z')).toEqual(fails); // Sunday 23:30 CET, already Monday in UTC
    });

    it('localMinutes for a half hour', () => {
      const e = "now.localHours('Asia/Kolkata') == 16 && now.localMinutes('Asia/Kolkata') == 0";
      expect(run(e, request(), undefined, new Date('2026-12-07T10:30:00Z'))).toEqual(holds); // UTC+05:30
    });
  });

  describe('per-tier limits with claims', () => {
    // An API key's metadata (`keys create --metadata tier=gold`) is its claims: a string map.
    const key = (tier: string): ConditionIdentityInput => ({
      method: 'api-key',
      clientId: 'partner',
      scopes: [],
      keyId: 'k1',
      claims: { tier },
    });
    const expr =
      "!('limit' in request.query) || int(request.query.limit) <= (identity.claims.tier == 'gold' ? 1000 : 100)";

    it('gold keys may ask for up to 1000 items, others 100', () => {
      expect(run(expr, request({ query: 'limit=1000' }), key('gold'))).toEqual(holds);
      expect(run(expr, request({ query: 'limit=101' }), key('silver'))).toEqual(fails);
      expect(run(expr, request({ query: 'limit=100' }), key('silver'))).toEqual(holds);
      expect(run(expr, request({ query: 'page=2' }), key('silver'))).toEqual(holds);
    });

    it('a limit that is not a number, or given twice, is a deny', () => {
      expect(run(expr, request({ query: 'limit=lots' }), key('gold'))).toEqual(errs('int_conversion_error'));
      // Repeated: "10,5000", whichever one the upstream reads.
      expect(run(expr, request({ query: 'limit=10&limit=5000' }), key('silver'))).toEqual(errs('int_conversion_error'));
    });

    it('an endpoint for one tier', () => {
      const e = "has(identity.claims.tier) && identity.claims.tier in ['gold', 'platinum']";
      expect(run(e, request(), key('gold'))).toEqual(holds);
      expect(run(e, request(), key('silver'))).toEqual(fails);
      expect(run(e, request(), { method: 'api-key', clientId: 'x', scopes: [], claims: {} })).toEqual(fails);
    });
  });
});

describe('config errors name the condition and carry the CEL message', () => {
  it.each([
    ['request.method ==', /Unexpected token: EOF \(at the end\)/],
    ["request.method == 'GET", /Unterminated string/],
    ['identty.subject == "a"', /Unknown variable: identty \(at `identty`\)/],
    ['request.methd == "GET"', /No such key: methd/],
    ['request.method + 1 == 2', /no such overload: string \+ int/],
    ['request.method', /a condition must be a bool; this one is a string/],
    ['identity.claims.admin', /this one is a dyn: a claim is untyped, compare it \(identity.claims.admin == true\)/],
    ['identity.scopes', /must be a bool; this one is a list<string>/],
    [
      'has(identity.roles)',
      /identity has no field "roles"; it has method, subject, client_id, scopes, issuer, key_id, claims, bound/,
    ],
    ['has(request.path.x)', /request.path is a string: it has no field "x"/],
    ['identity.?subject == "a"', /Expected IDENTIFIER/], // optional syntax is off
  ])('%s', (expr, message) => {
    const e = configError(expr);
    expect(e.where).toBe('routes[2].when[1]');
    expect(e.detail).toMatch(message);
    expect(e.detail).not.toContain('\n');
  });

  it('compileConditions gives each entry its own path; named entries keep their name', () => {
    const compiled = compileConditions(
      ['has(identity.subject)', { name: 'tenant', expr: 'request.params.tenant == identity.claims.tenant' }],
      'routes[4].when',
    );
    expect(compiled.map((c) => [c.where, c.name])).toEqual([
      ['routes[4].when[0]', undefined],
      ['routes[4].when[1]', 'tenant'],
    ]);
    expect(() => compileConditions(['true', { name: 'x', expr: 'request.nope' }], 'routes[4].when')).toThrow(
      /^routes\[4\]\.when\[1\]: /,
    );
  });

  it('an empty condition', () => {
    expect(configError('  ').detail).toBe('a condition is a non-empty CEL expression');
  });
});

describe('size and cost bounds', () => {
  it('source length', () => {
    const long = `request.host == '${'a'.repeat(4100)}'`;
    expect(configError(long).detail).toMatch(/characters long; at most 4096/);
  });

  it('AST size', () => {
    const e = configError(Array(600).fill('true').join('||')); // 1,199 nodes in 3,598 characters
    expect(e.detail).toMatch(/Exceeded maxAstNodes \(1000\): the condition is too large/);
  });

  it('nesting depth', () => {
    expect(configError(`${'('.repeat(40)}true${')'.repeat(40)}`).detail).toMatch(/Exceeded maxDepth \(32\)/);
  });

  it('list literal size', () => {
    const list = Array.from({ length: 300 }, (_, i) => `'${i}'`).join(',');
    expect(configError(`request.method in [${list}]`).detail).toMatch(/Exceeded maxListElements \(256\)/);
  });

  it('no comprehension inside a comprehension', () => {
    expect(configError('identity.scopes.all(s, identity.scopes.exists(t, t == s))').detail).toMatch(
      /^exists\(\) inside another comprehension's body: its cost is the product of the two lists' sizes.* \(at `identity.scopes.exists\(t, t == s\)`\)$/,
    );
    expect(
      configError('identity.claims.groups.map(g, identity.claims.roles.filter(r, r == g)).size() > 0').detail,
    ).toMatch(/filter\(\) inside another/);
  });

  it('nothing inside a comprehension that scans a value from outside it on every element', () => {
    expect(configError('identity.claims.groups.exists(g, g in identity.claims.roles)').detail).toMatch(
      /`in` inside a comprehension's body scans a list/,
    );
    expect(
      configError("request.headers['x-a'].split(',').exists(v, request.headers['x-b'].contains(v))").detail,
    ).toMatch(/contains\(\) inside a comprehension's body/);
    expect(configError("identity.claims.groups.exists(g, request.path.split('/').size() > 2)").detail).toMatch(
      /split\(\) inside/,
    );
    expect(configError("identity.claims.groups.exists(g, g == request.params.tenant + '-admin')").detail).toMatch(
      /`\+` inside a comprehension's body .* cel.bind/,
    );
  });

  it('what stays linear is accepted', () => {
    for (const ok of [
      "identity.claims.groups.exists(g, g == 'admin')",
      "identity.claims.groups.exists(g, g in ['a', 'b'])",
      'identity.claims.groups.exists(g, g in request.headers)',
      'identity.claims.groups.exists(g, g.startsWith(request.params.tenant))',
      "identity.claims.groups.exists(g, g.contains(':') && g.split(':')[0] == 'team')",
      "cel.bind(t, request.params.tenant + '-admin', identity.claims.groups.exists(g, g == t))",
      "identity.claims.groups.filter(g, g.startsWith('team-')).exists(g, g == 'team-a')",
      "request.headers.exists(name, name.startsWith('x-debug'))",
    ]) {
      expect(() => compileCondition(ok, 'routes[0].when[0]'), ok).not.toThrow();
    }
  });

  it('one comprehension over a 25,000-entry claim stays cheap', () => {
    const groups = Array.from({ length: 25_000 }, (_, i) => `group-${i}`);
    const c = compileCondition("identity.claims.groups.exists(g, g == 'group-24999')", 'routes[0].when[0]');
    const act = buildActivation(request(), jwtIdentity({ groups }), NOW);
    const t = performance.now();
    expect(c.evaluate(act)).toEqual(holds);
    expect(performance.now() - t).toBeLessThan(500);
  });
});

describe('guard rails', () => {
  it('matches() is refused: JavaScript regular expressions backtrack', () => {
    expect(configError("request.headers['x-id'].matches('^(a+)+$')").detail).toMatch(
      /^matches\(\) is not available: the regular expressions of JavaScript backtrack/,
    );
  });

  it('json() is refused', () => {
    expect(configError("bytes(request.headers['x']).json().size() > 0").detail).toMatch(/json\(\) is not available/);
  });

  it('built-in time-zone getters are refused with their cached twin named', () => {
    expect(configError("now.getHours('Europe/Berlin') >= 9").detail).toMatch(
      /use localHours\(zone\), e.g. now.localHours\('Europe\/Berlin'\)/,
    );
    expect(configError("now.getDayOfWeek('Europe/Berlin') == 1").detail).toMatch(/use localDayOfWeek/);
    expect(configError("now.getFullYear('Europe/Berlin') == 2026").detail).toMatch(/or getFullYear\(\) in UTC/);
    expect(() => compileCondition('now.getHours() >= 9', 'routes[0].when[0]')).not.toThrow(); // UTC: cheap
  });

  it('time zones are string literals that name a zone', () => {
    expect(configError("now.localHours('Mars/Olympus') > 1").detail).toMatch(/unknown time zone "Mars\/Olympus"/);
    expect(configError("now.localHours(request.headers['tz']) > 1").detail).toMatch(
      /takes the time zone as a string literal/,
    );
  });

  it('literal ranges are checked at load', () => {
    expect(configError("request.source_ip.inCidr('10.1.2.3/8')").detail).toMatch(
      /"10.1.2.3\/8" has host bits set; write the network address/,
    );
    expect(configError("request.source_ip.inCidr(['10.0.0.0/8', '10.0.0.0/33'])").detail).toMatch(
      /the prefix length must be 0-32/,
    );
    expect(configError("request.source_ip.inCidr('::ffff:10.0.0.0/104')").detail).toMatch(
      /IPv4-mapped IPv6 range; write it in IPv4 form/,
    );
    expect(configError("request.source_ip.inCidr('example.com/8')").detail).toMatch(
      /not an IPv4 or IPv6 address range/,
    );
  });
});

describe('evaluation', () => {
  it('on a public route identity is absent: has() says so, and reading it is an error', () => {
    expect(run('has(identity.subject)', request(), undefined)).toEqual(fails);
    expect(run('has(identity.claims)', request(), undefined)).toEqual(fails);
    expect(run("identity.subject == 'alice'", request(), undefined)).toEqual(errs('no_such_key'));
    expect(run("!(identity.subject == 'alice')", request(), undefined)).toEqual(errs('no_such_key'));
    expect(run('has(identity.subject)', request(), jwtIdentity({}))).toEqual(holds);
  });

  it('an absent optional identity field, and empty scopes and claims', () => {
    const key: ConditionIdentityInput = { method: 'api-key', clientId: 'svc', scopes: [], keyId: 'k1' };
    expect(run('has(identity.subject)', request(), key)).toEqual(fails);
    expect(run('identity.scopes.size() == 0 && identity.claims.size() == 0', request(), key)).toEqual(holds);
    expect(run("identity.key_id == 'k1' && identity.method == 'api-key'", request(), key)).toEqual(holds);
  });

  it('identity.bound: how the credential was proven held (absent for a bearer credential)', () => {
    expect(run('has(identity.bound)', request(), jwtIdentity({}))).toEqual(fails);
    const bound: ConditionIdentityInput = { method: 'jwt', subject: 'alice', scopes: [], bound: 'dpop' };
    expect(run("has(identity.bound) && identity.bound == 'dpop'", request(), bound)).toEqual(holds);
  });

  it('a condition on a missing claim is an error result, never a throw', () => {
    expect(run("identity.claims.department == 'finance'", request(), jwtIdentity({}))).toEqual(errs('no_such_key'));
    expect(run('identity.claims.a.b.c == 1', request(), jwtIdentity({ a: { b: {} } }))).toEqual(errs('no_such_key'));
    expect(
      run("has(identity.claims.department) && identity.claims.department == 'finance'", request(), jwtIdentity({})),
    ).toEqual(fails);
  });

  it('an error on one side of || does not matter when the other side holds (CEL semantics)', () => {
    expect(run("identity.claims.missing == 'x' || true", request(), jwtIdentity({}))).toEqual(holds);
    expect(run("true || identity.claims.missing == 'x'", request(), jwtIdentity({}))).toEqual(holds);
    expect(run("identity.claims.missing == 'x' && false", request(), jwtIdentity({}))).toEqual(fails);
  });

  it('the error names the code and the part of the expression, never a value from the request or the claims', () => {
    const r = run(
      "int(identity.claims.secret) == 1 || request.headers['x'] == 'y'",
      request({ headers: headers({ x: 'HEADER-SECRET' }) }),
      jwtIdentity({ secret: 'tok-SECRET-123' }),
    );
    expect(r).toEqual({ ok: false, error: { code: 'int_conversion_error', at: '`int(identity.claims.secret)`' } });
    expect(JSON.stringify(r)).not.toMatch(/SECRET/);
    const types = run('identity.claims.level > 2', request(), jwtIdentity({ level: 'SECRET-high' }));
    expect(JSON.stringify(types)).not.toMatch(/SECRET/);
    expect(types.ok).toBe(false);
  });

  it('claims hold JSON: numbers compare with int and double literals', () => {
    expect(
      run(
        'identity.claims.level >= 2 && identity.claims.level == 3 && identity.claims.ratio < 0.5',
        request(),
        jwtIdentity({ level: 3, ratio: 0.25 }),
      ),
    ).toEqual(holds);
    expect(
      run(
        "identity.claims.verified == true && identity.claims.nested.team == 'a'",
        request(),
        jwtIdentity({ verified: true, nested: { team: 'a' } }),
      ),
    ).toEqual(holds);
  });

  it('claim values with CR/LF are just strings to a condition', () => {
    expect(
      run("identity.claims.name.contains('\\n')", request(), jwtIdentity({ name: 'bob\r\nx-admin: true' })),
    ).toEqual(holds);
    expect(run("identity.claims.name == 'bob'", request(), jwtIdentity({ name: 'bob\r\nx-admin: true' }))).toEqual(
      fails,
    );
  });

  it('nothing is inherited: prototype names are not claims, headers or parameters', () => {
    const c = jwtIdentity(JSON.parse('{"__proto__": {"admin": true}}'));
    expect(run('has(identity.claims.constructor)', request(), c)).toEqual(fails);
    expect(
      run(
        "'toString' in identity.claims || 'constructor' in request.headers || 'hasOwnProperty' in request.query",
        request({ query: 'a=1' }),
        c,
      ),
    ).toEqual(fails);
    expect(run("identity.claims.constructor == ''", request(), c)).toEqual(errs('no_such_key'));
    // A claim literally named __proto__ is an ordinary member.
    expect(run("identity.claims['__proto__'].admin == true", request(), c)).toEqual(holds);
    expect(run("request.params.constructor == ''", request(), c)).toEqual(errs('no_such_key'));
  });

  it('a 1 MB claim set: reading one member costs what the member costs', () => {
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 20_000; i++) big[`claim_${i}`] = 'x'.repeat(40);
    big.roles = ['admin'];
    expect(JSON.stringify(big).length).toBeGreaterThan(1_000_000);
    const c = compileCondition("'admin' in identity.claims.roles", 'routes[0].when[0]');
    const act = buildActivation(request(), jwtIdentity(big), NOW);
    const t = performance.now();
    const results = Array.from({ length: 100 }, () => c.evaluate(act));
    expect(performance.now() - t).toBeLessThan(100);
    expect(results).toEqual(Array(100).fill(holds));
  });

  it('100-deep nesting: unread levels cost nothing; reading deep is bounded by the nesting limit', () => {
    let deep: Record<string, unknown> = { leaf: 'yes' };
    for (let i = 0; i < 99; i++) deep = { a: deep };
    deep.tier = 'gold';
    expect(run("identity.claims.tier == 'gold'", request(), jwtIdentity(deep))).toEqual(holds);
    expect(run(`identity.claims.${'a.'.repeat(20)}a != null`, request(), jwtIdentity(deep))).toEqual(holds);
    expect(run(`identity.claims.${'a.'.repeat(20)}leaf == 'yes'`, request(), jwtIdentity(deep))).toEqual(
      errs('no_such_key'),
    );
    expect(configError(`identity.claims.${'a.'.repeat(99)}leaf == 'yes'`).detail).toMatch(/Exceeded maxDepth \(32\)/);
  });

  it('request fields', () => {
    const req = request({
      method: 'POST',
      host: 'a.example.com',
      path: '/v1/x',
      query: 'q=a+b&tag=1;tag=2&enc=%C3%A9',
      headers: headers({ 'x-env': 'prod' }),
      params: { id: '7' },
      sourceIp: '2001:db8::1',
      contextExtensions: { 'portcullis.route': 'orders' },
    });
    const e = [
      "request.method == 'POST'",
      "request.host == 'a.example.com'",
      "request.path == '/v1/x'",
      "request.query.q == 'a b'",
      "request.query.tag == '1,2'",
      "request.query.enc == 'é'",
      "request.headers['x-env'] == 'prod'",
      "request.params.id == '7'",
      "request.source_ip == '2001:db8::1'",
      "request.context_extensions['portcullis.route'] == 'orders'",
    ].join(' && ');
    expect(run(e, req, undefined)).toEqual(holds);
  });

  it('a query that does not decode fails the conditions that read it, and only those', () => {
    const req = request({ query: 'a=%E0%A4' });
    expect(run("'a' in request.query", req, undefined)).toEqual(errs('query_undecodable'));
    expect(run("request.method == 'GET'", req, undefined)).toEqual(holds);
  });

  it('a result never depends on what the same condition evaluated before (the library caches per expression)', () => {
    const c = compileCondition("'admin' in identity.claims.roles || identity.claims.level > 2", 'routes[0].when[0]');
    const at = (claims: Record<string, unknown> | undefined) =>
      c.evaluate(buildActivation(request(), claims && jwtIdentity(claims), NOW));
    const sequence = [
      [undefined, errs('no_such_key')],
      [{ roles: 'admin' }, errs('no_such_key')],
      [{ roles: ['admin'] }, holds],
      [{ roles: [], level: 3 }, holds],
      [{ roles: [], level: '3' }, errs('no_such_overload')],
      [{ roles: [1, 'admin'] }, holds],
      [{ roles: ['x'], level: 1 }, fails],
      [undefined, errs('no_such_key')],
      [{ roles: ['admin'] }, holds],
    ] as const;
    for (const [claims, expected] of sequence)
      expect(at(claims as Record<string, unknown> | undefined), JSON.stringify(claims)).toEqual(expected);
  });

  it('a ready query map is used as it is', () => {
    expect(run("request.query.x == '1'", request({ query: { x: '1' } }), undefined)).toEqual(holds);
  });
});

describe('claimsRead (for check --explain)', () => {
  it('lists the claims an expression reads, longest chain first written', () => {
    const c = compileCondition(
      "has(identity.claims.tier) && identity.claims.realm_access.roles.exists(r, r == 'a') && identity.claims['https://example.com/tenant'] == request.params.t && identity.claims.groups[request.params.i] == 'x' && 'k' in identity.claims",
      'routes[0].when[0]',
    );
    expect(c.claimsRead).toEqual(['tier', 'realm_access.roles', '["https://example.com/tenant"]', 'groups']);
    expect(compileCondition("request.method == 'GET'", 'routes[0].when[0]').claimsRead).toEqual([]);
  });
});

describe('evaluateAll', () => {
  const conditions = compileConditions(
    ['has(identity.subject)', { name: 'tenant', expr: 'request.params.tenant == identity.claims.tenant' }, 'true'],
    'routes[1].when',
  );
  const act = (claims: Record<string, unknown>, params: Record<string, string>) =>
    buildActivation(request({ params }), jwtIdentity(claims), NOW);

  it('all hold', () => {
    expect(evaluateAll(conditions, act({ tenant: 'a' }, { tenant: 'a' }))).toEqual({ ok: true });
  });

  it('stops at the first that is false, and says which', () => {
    expect(evaluateAll(conditions, act({ tenant: 'a' }, { tenant: 'b' }))).toEqual({
      ok: false,
      failed: 1,
      result: fails,
    });
    expect(conditions[1].name).toBe('tenant');
  });

  it('or the first that cannot be evaluated', () => {
    expect(evaluateAll(conditions, act({}, { tenant: 'b' }))).toEqual({
      ok: false,
      failed: 1,
      result: errs('no_such_key'),
    });
    expect(evaluateAll(conditions, buildActivation(request(), undefined, NOW))).toEqual({
      ok: false,
      failed: 0,
      result: fails,
    });
  });

  it('an empty list holds', () => {
    expect(evaluateAll([], act({}, {}))).toEqual({ ok: true });
  });
});

describe('address ranges', () => {
  it('prefix boundaries, IPv4 and IPv6', () => {
    expect(ipInCidr('10.255.255.255', '10.0.0.0/8')).toBe(true);
    expect(ipInCidr('11.0.0.0', '10.0.0.0/8')).toBe(false);
    expect(ipInCidr('203.0.113.9', '0.0.0.0/0')).toBe(true);
    expect(ipInCidr('203.0.113.9', '203.0.113.9')).toBe(true);
    expect(ipInCidr('203.0.113.8', '203.0.113.9/32')).toBe(false);
    expect(ipInCidr('2001:db8:7fff:ffff::1', '2001:db8::/33')).toBe(true);
    expect(ipInCidr('2001:db8:8000::1', '2001:db8::/33')).toBe(false);
    expect(ipInCidr('::1', '::1/128')).toBe(true);
    expect(ipInCidr('::2', '::1')).toBe(false);
    expect(ipInCidr('fe80::1', '::/0')).toBe(true);
    expect(ipInCidr('2001:db8::a:b:c:d', '2001:db8::a:b:0:0/96')).toBe(true);
  });

  it('families never mix: an IPv4 address is not in an IPv6 range, whatever its bits', () => {
    expect(ipInCidr('10.0.0.1', '::/0')).toBe(false);
    expect(ipInCidr('::a00:1', '10.0.0.0/8')).toBe(false); // IPv4-compatible (deprecated) is IPv6
    expect(ipInCidr('::ffff:10.0.0.1', '10.0.0.0/8')).toBe(true); // IPv4-mapped is IPv4
    expect(ipInCidr('::ffff:a00:1', '10.0.0.0/8')).toBe(true);
  });

  it('what is not an address or a range', () => {
    for (const ip of ['', '10.0.0', '10.0.0.256', '010.0.0.1', '10.0.0.1/32', '[::1]', 'fe80::1%eth0', ' 10.0.0.1'])
      expect(() => ipInCidr(ip, '0.0.0.0/0'), ip).toThrow(/not an IP address/);
    for (const r of ['10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '::/129', '10.0.0.0/8/8', 'fe80::/10%eth0'])
      expect(typeof parseCidr(r), r).toBe('string');
    expect(parseCidr('2001:db8::/32')).toEqual({ family: 6, words: [0x20010db8, 0, 0, 0], prefix: 32 });
    expect(parseCidr('192.168.0.0/16')).toEqual({ family: 4, words: [0xc0a80000], prefix: 16 });
  });
});

describe('time zones', () => {
  it('IANA names this runtime knows', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });
});

describe('parseQueryMap', () => {
  it('reads names and values as a form decoder does, on & and ;', () => {
    expect({ ...parseQueryMap('a=1&b=x+y;c=%26&flag&=skip&&d=') }).toEqual({
      a: '1',
      b: 'x y',
      c: '&',
      flag: '',
      d: '',
    });
  });

  it('joins a repeated name in order', () => {
    expect(parseQueryMap('t=a&t=b;t=c').t).toBe('a,b,c');
  });

  it('has no prototype', () => {
    expect(Object.getPrototypeOf(parseQueryMap('a=1'))).toBe(null);
  });

  it('throws for an escape that does not decode', () => {
    expect(() => parseQueryMap('a=%zz')).toThrow(/does not decode/);
    expect(() => parseQueryMap('%C0%AF=1')).toThrow(/does not decode/);
  });
});
