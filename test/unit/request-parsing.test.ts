// The readers behind the request-confusion rules (docs/security.md): hosts, client addresses and
// their rate-limit prefixes, query parameters. decide()-level attacks are in request-confusion.test.ts.
import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../src/core/host.ts';
import { addressPrefix, canonicalIp, clientAddress } from '../../src/core/ip.ts';
import { isMethodOverrideHeader, isMethodOverrideName, NO_QUERY, scanQuery } from '../../src/core/query.ts';

describe('normalizeHost', () => {
  it.each([
    ['api.example.com', 'api.example.com'],
    ['API.Example.COM', 'api.example.com'],
    ['api.example.com.', 'api.example.com'],
    ['api.example.com:8443', 'api.example.com'],
    ['api.example.com.:8443', 'api.example.com'],
    ['localhost', 'localhost'],
    ['_dmarc.example.com', '_dmarc.example.com'],
    ['xn--r8jz45g.jp', 'xn--r8jz45g.jp'],
    ['1a.example', '1a.example'],
    ['foo.0xg', 'foo.0xg'],
    ['203.0.113.7', '203.0.113.7'],
    ['203.0.113.7:80', '203.0.113.7'],
    ['[::1]', '[::1]'],
    ['[0:0::1]:8080', '[::1]'],
    ['[2001:DB8::A]', '[2001:db8::a]'],
    ['[::FFFF:1.2.3.4]', '[::ffff:1.2.3.4]'],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  ])('%j -> %j', (input, host) => {
    expect(normalizeHost(input)).toBe(host);
  });

  it('returns the very string when it is already canonical (no allocation on the hot path)', () => {
    const h = ['api', 'example', 'com'].join('.');
    expect(normalizeHost(h)).toBe(h);
  });

  it.each([
    '',
    '.',
    ':80',
    'a..b',
    '.a',
    'a..',
    'a b',
    'a\tb',
    'a,b',
    'u@a',
    'a/b',
    'a%2e',
    'a:',
    'a:0',
    'a:65536',
    'a:123456',
    'a:-1',
    'a:80:80',
    'a:+80',
    '[::1',
    '[]',
    '[::1]x',
    '[::1]:',
    '[fe80::1%25eth0]',
    '[v1.x]',
    '[1.2.3.4]',
    'é.com',
    'a\u0000b',
    '127.1',
    '1.2.3.4.5',
    '1.2.3.256',
    '01.2.3.4',
    '0x7f.0.0.1',
    '4294967295',
    'foo.0x1',
    'a.1',
    `${'a'.repeat(64)}.com`,
    `${'a.'.repeat(127)}ab`,
  ])('%j is not a valid authority', (input) => {
    expect(normalizeHost(input)).toBeUndefined();
  });
});

describe('client addresses', () => {
  it('canonicalIp: one text per address; anything but exactly one IP is undefined', () => {
    expect(canonicalIp('2001:DB8:0:0::1')).toBe('2001:db8::1');
    expect(canonicalIp('1:0:0:1:0:0:0:1')).toBe('1:0:0:1::1');
    expect(canonicalIp('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(canonicalIp('::')).toBe('::');
    for (const bad of ['', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4:80', '[::1]', 'fe80::1%eth0', '01.2.3.4', 'garbage'])
      expect(canonicalIp(bad), bad).toBeUndefined();
  });

  it('clientAddress: the entry trustedHops from the right, else the peer when the list is shorter', () => {
    const list = '1.1.1.1, 2.2.2.2,3.3.3.3';
    expect([0, 1, 2, 3].map((h) => clientAddress('9.9.9.9', list, h))).toEqual([
      '3.3.3.3',
      '2.2.2.2',
      '1.1.1.1',
      '9.9.9.9',
    ]);
    expect(clientAddress('9.9.9.9', undefined, 0)).toBe('9.9.9.9');
    expect(clientAddress('9.9.9.9', '', 0)).toBe('9.9.9.9');
    expect(clientAddress('9.9.9.9', '\t2001:db8::1 ', 0)).toBe('2001:db8::1');
    for (const bad of ['x', '1.1.1.1,', ',', '1.1.1.1;2.2.2.2', '2.2.2.2:1'])
      expect(clientAddress('9.9.9.9', bad, 0), bad).toBeUndefined();
  });

  it('addressPrefix: IPv6 by /64 unless configured, IPv4 per address unless configured; unreadable shares one key', () => {
    expect(addressPrefix('2001:db8:1:2:3:4:5:6', 32, 64)).toBe('2001:db8:1:2::/64');
    expect(addressPrefix('2001:DB8:1:2:ffff:ffff:ffff:ffff', 32, 64)).toBe('2001:db8:1:2::/64');
    expect(addressPrefix('2001:db8:1:2:3:4:5:6', 32, 48)).toBe('2001:db8:1::/48');
    expect(addressPrefix('2001:db8:8000::1', 32, 33)).toBe('2001:db8:8000::/33');
    expect(addressPrefix('2001:db8::1', 32, 128)).toBe('2001:db8::1');
    expect(addressPrefix('::ffff:10.1.2.3', 24, 64)).toBe('10.1.2.0/24');
    expect(addressPrefix('10.1.2.3', 32, 64)).toBe('10.1.2.3');
    expect(addressPrefix('255.255.255.255', 1, 64)).toBe('128.0.0.0/1');
    expect(addressPrefix('garbage', 32, 64)).toBe('unknown');
    expect(addressPrefix('', 32, 64)).toBe('unknown');
  });
});

describe('query parameters', () => {
  it('finds credential parameters by decoded, case-folded name, and keeps the raw spelling for removal', () => {
    const q = scanQuery('/x?a=1&Access%5FToken=t%2B1&api_key=k+1;access_token=z', ['access_token', 'api_key']);
    expect(q.credentials).toEqual([
      { name: 'access_token', rawName: 'Access%5FToken', value: 't+1', afterSemicolon: false },
      { name: 'api_key', rawName: 'api_key', value: 'k 1', afterSemicolon: false },
      { name: 'access_token', rawName: 'access_token', value: 'z', afterSemicolon: true },
    ]);
    expect(scanQuery('/x?access_token=%zz', ['access_token']).credentials[0].value).toBeUndefined();
    expect(scanQuery('/x', ['access_token'])).toBe(NO_QUERY);
    expect(scanQuery('/x?page=2&q=%zz', ['access_token'])).toBe(NO_QUERY);
  });

  it('method override names', () => {
    for (const n of [
      '_method',
      '_METHOD',
      '__method',
      '.method',
      ' _method',
      '_method[]',
      '-method',
      'x-http-method-override',
      'X_HTTP_METHOD',
      'x-method-override',
      'methodOverride',
      'httpMethod',
      'http_method',
    ]) {
      expect(isMethodOverrideName(n), n).toBe(true);
    }
    for (const n of ['method', 'Method', ' method', 'method[]', 'methods', 'payment_method', 'sort', 'paymentMethod'])
      expect(isMethodOverrideName(n), n).toBe(false);
    for (const h of [
      'x-http-method-override',
      'x_http_method_override',
      'x-http_method-override',
      'x-http-method',
      'x-method-override',
    ])
      expect(isMethodOverrideHeader(h), h).toBe(true);
    for (const h of ['x-original-method', 'x-api-key', 'access-control-request-method', 'method'])
      expect(isMethodOverrideHeader(h), h).toBe(false);
  });
});
