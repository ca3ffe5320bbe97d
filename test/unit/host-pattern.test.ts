// match.host (src/policy/host-pattern.ts): exact hosts and `*.example.com`, one label on the left.
import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../src/core/host.ts';
import { PolicyConfigError } from '../../src/policy/config-error.ts';
import { compileHostPattern } from '../../src/policy/host-pattern.ts';

const WHERE = 'routes[1].match.host';
/** Does the pattern match the request's authority, canonicalized as the decision path does? */
const matches = (pattern: string, authority: string) => {
  const host = normalizeHost(authority);
  return host !== undefined && compileHostPattern(pattern, WHERE).matches(host);
};

function refused(pattern: string): string {
  try {
    compileHostPattern(pattern, WHERE);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyConfigError);
    expect((e as PolicyConfigError).where).toBe(WHERE);
    return (e as PolicyConfigError).detail;
  }
  throw new Error(`compiled: ${pattern}`);
}

describe('*.example.com', () => {
  it('matches exactly one label on the left', () => {
    expect(matches('*.example.com', 'a.example.com')).toBe(true);
    expect(matches('*.example.com', 'tenant-7.example.com')).toBe(true);
    expect(matches('*.example.com', 'example.com')).toBe(false);
    expect(matches('*.example.com', 'a.b.example.com')).toBe(false);
    expect(matches('*.example.com', 'aexample.com')).toBe(false);
    expect(matches('*.example.com', 'a.example.com.evil.net')).toBe(false);
    expect(matches('*.example.com', 'a.example.co')).toBe(false);
  });

  it('in any case, with the port and one trailing dot ignored', () => {
    expect(matches('*.Example.COM', 'A.EXAMPLE.com:8443')).toBe(true);
    expect(matches('*.example.com.', 'a.example.com.')).toBe(true);
    expect(matches('*.example.com', 'a.example.com.')).toBe(true);
  });

  it('an IP literal never matches a name pattern', () => {
    expect(matches('*.example.com', '10.0.0.1')).toBe(false);
    expect(matches('*.example.com', '[::1]')).toBe(false);
  });

  it('the source is kept for explain and logs', () => {
    expect(compileHostPattern('*.example.com', WHERE).source).toBe('*.example.com');
  });
});

describe('exact hosts', () => {
  it('match the canonical host only', () => {
    expect(matches('api.example.com', 'API.example.com:443')).toBe(true);
    expect(matches('api.example.com', 'a.api.example.com')).toBe(false);
    expect(matches('10.0.0.1', '10.0.0.1:80')).toBe(true);
    expect(matches('[2001:DB8::1]', '[2001:db8:0::1]')).toBe(true);
  });
});

describe('patterns the config refuses', () => {
  it.each([
    ['', /a host is a name, an IP address or \*\.name/],
    ['*', /\* stands only for the whole leftmost label, as in \*\.example\.com/],
    ['*.', /not a host name or IP address/],
    ['a.*.com', /\* stands only for the whole leftmost label/],
    ['*a.example.com', /\* stands only for the whole leftmost label/],
    ['a*.example.com', /\* stands only for the whole leftmost label/],
    ['**.example.com', /\* stands only for the whole leftmost label/],
    ['*.*.example.com', /\* stands only for the whole leftmost label/],
    ['*.example.com:8443', /no port; the request's port is ignored/],
    ['example.com:443', /no port/],
    ['*.10.0.0.1', /a wildcard stands for a label of a name, not part of an IP address/],
    ['*.[::1]', /not part of an IP address/],
    ['*.0.0.1', /not a host name or IP address/],
    ['*..example.com', /not a host name or IP address/],
    ['user@example.com', /not a host name or IP address/],
    ['*.exa mple.com', /not a host name or IP address/],
  ])('%s', (pattern, message) => {
    expect(refused(pattern)).toMatch(message);
  });
});
