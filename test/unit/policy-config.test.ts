// Config errors of the policy options name their path (routes[i].when[j], routes[i].match.path_template,
// routes[i].match.host, headers.set.<name>) and say what is wrong: the same errors for `config check`,
// start and reload, since all three read the config through parseConfig.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/policy/load.ts';

const BASE = `
credentials:
  jwt: [{ issuer: https://idp.example.com, audiences: [api], jwks_file: jwks.json }]
routes:
  - { name: ok, match: { path_prefix: /ok }, auth: [jwt] }
`;

function problems(routeYaml: string, extra = ''): string[] {
  try {
    parseConfig(`${BASE}  - ${routeYaml}\n${extra}`);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('routes[].when', () => {
  it.each([
    ['"request.methd == \'GET\'"', /^routes\[1\]\.when\[0\]: .*methd/],
    ['"identty.subject == \'a\'"', /^routes\[1\]\.when\[0\]: .*identty/],
    ['"request.method +"', /^routes\[1\]\.when\[0\]: /],
    ['"request.method"', /^routes\[1\]\.when\[0\]: a condition must be a bool; this one is a string/],
    ['"identity.claims.admin"', /^routes\[1\]\.when\[0\]: a condition must be a bool.*compare it/],
    ['"request.method + 1 == 2"', /^routes\[1\]\.when\[0\]: /],
    ['"request.path.matches(\'^(a+)+$\')"', /^routes\[1\]\.when\[0\]: .*matches/],
    ['""', /^routes\[1\]\.when\[0\]: a condition is a non-empty CEL expression/],
    [`"${'1 + '.repeat(1100)}1 == 1"`, /^routes\[1\]\.when\[0\]: /],
  ])('%s', (expr, message) => {
    const route = (when: string) => `{ name: r, match: { path_prefix: /r }, auth: [jwt], when: [${when}] }`;
    expect(problems(route(expr))[0]).toMatch(message);
    // Second in the list: the path says so.
    const second = problems(route(`"request.method == 'GET'", ${expr}`))[0];
    expect(second).toMatch(new RegExp(message.source.replace('when\\[0\\]', 'when\\[1\\]')));
  });

  it('named entries: the path is still routes[i].when[j]; a bad name or an unknown member is refused', () => {
    expect(problems('{ name: r, match: { path: /r }, auth: [jwt], when: [{ name: n, expr: "1" }] }')[0]).toMatch(
      /^routes\[1\]\.when\[0\]: a condition must be a bool/,
    );
    expect(problems('{ name: r, match: { path: /r }, auth: [jwt], when: [{ name: "a b", expr: "true" }] }')[0]).toMatch(
      /^routes\[1\]\.when\[0\]\.name: /,
    );
    expect(problems('{ name: r, match: { path: /r }, auth: [jwt], when: [{ expr: "true", if: x }] }')[0]).toMatch(
      /^routes\[1\]\.when\[0\]/,
    );
  });

  it('a public route may have conditions (identity is absent there)', () => {
    expect(problems('{ name: r, public: true, match: { path: /r }, when: ["!has(identity.subject)"] }')).toEqual([]);
  });

  it('mode is enforce or shadow', () => {
    expect(problems('{ name: r, match: { path: /r }, auth: [jwt], mode: dry-run }')[0]).toMatch(/^routes\[1\]\.mode: /);
    expect(problems('{ name: r, match: { path: /r }, auth: [jwt], mode: shadow }')).toEqual([]);
  });
});

describe('routes[].match.path_template', () => {
  it.each([
    ['/v1/{a}/{a}', /appears twice/],
    ['/v1/order-{id}', /a variable is a whole segment/],
    ['/v1/{}/x', /needs a name/],
    ['/v1/{rest...}/x', /must be the last segment/],
    ['v1/{id}', /starts with \//],
    ['/v1/{id}/', /does not end with \//],
    ['/v1//{id}', /no empty segments/],
    ['/v1/%2F/{id}', /no request path can match/],
  ])('%s', (template, message) => {
    const p = problems(`{ name: r, match: { path_template: "${template}" }, auth: [jwt] }`);
    expect(p[0]).toMatch(/^routes\[1\]\.match\.path_template: /);
    expect(p[0]).toMatch(message);
  });

  it('not together with path or path_prefix', () => {
    expect(problems('{ name: r, match: { path_template: "/a/{b}", path: /a }, auth: [jwt] }')[0]).toMatch(
      /^routes\[1\]\.match\.path_template: a route matches by one of path, path_prefix and path_template/,
    );
  });
});

describe('routes[].match.host', () => {
  it.each([
    ['"*.*.example.com"', /stands only for the whole leftmost label/],
    ['"a.*.com"', /stands only for the whole leftmost label/],
    ['"*example.com"', /stands only/],
    ['"*.10.0.0"', /not part of an IP address|not a host name/],
    ['"*.example.com:443"', /no port/],
    ['"exa mple.com"', /not a host name/],
  ])('%s', (host, message) => {
    const p = problems(`{ name: r, match: { host: ${host} }, auth: [jwt] }`);
    expect(p[0]).toMatch(/^routes\[1\]\.match\.host: /);
    expect(p[0]).toMatch(message);
  });

  it('*.example.com is accepted', () => {
    expect(problems('{ name: r, match: { host: "*.example.com" }, auth: [jwt] }')).toEqual([]);
  });
});

describe('headers.set from claims', () => {
  it.each([
    ['"claims."', /expected a member name/],
    ['"claims.a..b"', /expected a member name/],
    ['"claims[email]"', /quoted/],
    ['"claimz.email"', /./],
  ])('%s', (value, message) => {
    const p = problems('{ name: r, match: { path: /r }, auth: [jwt] }', `headers: { set: { x-email: ${value} } }`);
    expect(p.join('\n')).toMatch(/headers\.set\.x-email/);
    expect(p.join('\n')).toMatch(message);
  });
});

describe('docs/policy.md', () => {
  it("the worked example's config and every cookbook route compile", () => {
    const doc = readFileSync('docs/policy.md', 'utf8');
    const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    const worked = blocks[0];
    expect(() => parseConfig(`${BASE.split('routes:')[0]}${worked}`)).not.toThrow();
    // Cookbook fragments (`when:` lists, `match:`), each inside a route of its own.
    const fragments = blocks.filter((b) => /^(when|match):/m.test(b) && !b.startsWith('# Authorino'));
    expect(fragments).toHaveLength(5);
    fragments.forEach((f, i) => {
      const body = f.includes('match:') ? f : `match: { path_prefix: /x }\n${f}`;
      const route = `  - name: r${i}\n    auth: [jwt]\n${body.replace(/^/gm, '    ').trimEnd()}\n`;
      expect(() => parseConfig(`${BASE}${route}`), f).not.toThrow();
    });
    // Whole routes (the IP allow-list, the shadow route).
    const routes = blocks.filter((b) => /^\s*- name:/.test(b));
    expect(routes).toHaveLength(2);
    for (const r of routes) {
      const indent = /^(\s*)-/.exec(r)![1].length;
      const items = r.replace(new RegExp(`^ {${indent}}`, 'gm'), '  ');
      expect(() => parseConfig(`${BASE}${items}`), r).not.toThrow();
    }
  });
});
