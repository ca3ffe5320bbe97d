// The pure part of forward-auth: reading the original request out of each proxy's call, the
// trusted-proxy list, and the forward_auth config section.
import { describe, expect, it } from 'vitest';
import { parseForwardAuthCall, type ForwardAuthCall } from '../../src/http/forward-auth-request.ts';
import { TrustedProxies } from '../../src/http/trusted-proxies.ts';
import { inheritsNothing } from '../support/objects.ts';
import { ConfigError, parseConfig } from '../../src/policy/load.ts';

const call = (over: Partial<ForwardAuthCall> & { h?: Array<[string, string]> }): ForwardAuthCall => ({
  method: 'GET',
  url: '/authz',
  peerIp: '10.0.0.2',
  rawHeaders: (over.h ?? []).flat(),
  ...over,
});
const parse = (c: ForwardAuthCall) => parseForwardAuthCall(c, '/authz');

describe('parseForwardAuthCall', () => {
  it('Envoy style: method and Host of the call, path after the prefix with its query', () => {
    const p = parse(
      call({
        method: 'DELETE',
        url: '/authz/v1/orders/7?x=1&y',
        h: [
          ['Host', 'api.example.com:8443'],
          ['X-Real-IP', '198.51.100.1'],
        ],
      }),
    );
    expect(p).toMatchObject({ ok: true, style: 'envoy', nginxMode: false });
    if (!p.ok) return;
    expect(p.request).toMatchObject({
      method: 'DELETE',
      host: 'api.example.com:8443',
      rawPath: '/v1/orders/7?x=1&y',
      sourceIp: '198.51.100.1',
    });
    expect(p.request.headers[':authority']).toBe('api.example.com:8443');
    expect(p.request.headers['host']).toBeUndefined();
  });

  it('Envoy style: the root path is the prefix plus "/"', () => {
    const p = parse(call({ url: '/authz/', h: [['Host', 'h']] }));
    expect(p.ok && p.request.rawPath).toBe('/');
  });

  it('nginx style: X-Original-Method / X-Original-URI, host from Host, nginx mode from X-Portcullis-Proxy', () => {
    const p = parse(
      call({
        h: [
          ['Host', 'shop.example.com'],
          ['X-Original-Method', 'POST'],
          ['X-Original-URI', '/cart?a=1'],
          ['X-Portcullis-Proxy', 'nginx'],
        ],
      }),
    );
    expect(p).toMatchObject({
      ok: true,
      style: 'nginx',
      nginxMode: true,
      request: { method: 'POST', host: 'shop.example.com', rawPath: '/cart?a=1' },
    });
  });

  it('Traefik style: X-Forwarded-Method/-Uri/-Host; client address = last X-Forwarded-For entry', () => {
    const p = parse(
      call({
        h: [
          ['Host', 'portcullis:9192'],
          ['X-Forwarded-Method', 'PUT'],
          ['X-Forwarded-Uri', '/v1/x'],
          ['X-Forwarded-Host', 'api.example.com'],
          ['X-Forwarded-For', '1.1.1.1, 2.2.2.2'],
        ],
      }),
    );
    expect(p).toMatchObject({
      ok: true,
      style: 'traefik',
      request: { method: 'PUT', host: 'api.example.com', rawPath: '/v1/x', sourceIp: '2.2.2.2' },
    });
  });

  it('the forwarding and control headers never reach the decision; repeated headers join with ","', () => {
    const p = parse(
      call({
        h: [
          ['X-Forwarded-Method', 'GET'],
          ['X-Forwarded-Uri', '/v1'],
          ['X-Forwarded-Host', 'h'],
          ['X-Forwarded-Proto', 'https'],
          ['X-Portcullis-Proxy', 'nginx'],
          ['X-Api-Key', 'a'],
          ['x-api-key', 'b'],
          ['constructor', 'c'],
        ],
      }),
    );
    if (!p.ok) throw new Error(p.reason);
    const names = Object.keys(p.request.headers);
    for (const h of [
      'x-forwarded-method',
      'x-forwarded-uri',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-portcullis-proxy',
    ])
      expect(names).not.toContain(h);
    expect(p.request.headers['x-api-key']).toBe('a,b');
    expect(p.request.headers['constructor']).toBe('c');
    expect(inheritsNothing(p.request.headers)).toBe(true);
    // The scheme the proxy states (the DPoP htu is rebuilt from it); no certificate from the peer.
    expect(p.request).toMatchObject({ scheme: 'https', peerCertificate: undefined, peerPrincipal: undefined });
  });

  it('client address: unusable values fall back to the peer (IPv4-mapped peers unmapped)', () => {
    const nginx = (ip: string) =>
      call({
        peerIp: '::ffff:10.0.0.9',
        h: [
          ['Host', 'h'],
          ['X-Original-Method', 'GET'],
          ['X-Original-URI', '/'],
          ['X-Real-IP', ip],
        ],
      });
    expect(
      parse(nginx('not-an-ip')).ok && (parse(nginx('not-an-ip')) as { request: { sourceIp: string } }).request.sourceIp,
    ).toBe('10.0.0.9');
    expect((parse(nginx('2001:db8::1')) as { request: { sourceIp: string } }).request.sourceIp).toBe('2001:db8::1');
    // Traefik never reads X-Real-IP: a client could have sent it.
    const t = parse(
      call({
        peerIp: '10.0.0.3',
        h: [
          ['X-Forwarded-Method', 'GET'],
          ['X-Forwarded-Uri', '/'],
          ['X-Forwarded-Host', 'h'],
          ['X-Real-IP', '198.51.100.1'],
        ],
      }),
    );
    expect((t as { request: { sourceIp: string } }).request.sourceIp).toBe('10.0.0.3');
  });

  const bad: Array<[string, ForwardAuthCall]> = [
    ['no original request', call({})],
    ['nginx without method', call({ h: [['X-Original-URI', '/']] })],
    [
      'Traefik without method',
      call({
        h: [
          ['X-Forwarded-Uri', '/'],
          ['X-Forwarded-Host', 'h'],
        ],
      }),
    ],
    [
      'both styles',
      call({
        h: [
          ['X-Original-URI', '/'],
          ['X-Original-Method', 'GET'],
          ['X-Forwarded-Uri', '/'],
          ['X-Forwarded-Method', 'GET'],
        ],
      }),
    ],
    [
      'repeated forwarding header',
      call({
        h: [
          ['X-Original-Method', 'GET'],
          ['X-Original-URI', '/a'],
          ['x-original-uri', '/b'],
        ],
      }),
    ],
    [
      'two Host lines',
      call({
        url: '/authz/x',
        h: [
          ['Host', 'a'],
          ['Host', 'b'],
        ],
      }),
    ],
    ['prefixed call naming an original URI', call({ url: '/authz/x', h: [['X-Original-URI', '/y']] })],
    ['not under the prefix', call({ url: '/x/../authz/y' })],
    ['absolute-form', call({ url: 'http://h/authz/y' })],
    ['a longer name sharing the prefix', call({ url: '/authzz/y' })],
    [
      'URI not starting with /',
      call({
        h: [
          ['X-Original-Method', 'GET'],
          ['X-Original-URI', '*'],
          ['Host', 'h'],
        ],
      }),
    ],
    [
      'Traefik without host',
      call({
        h: [
          ['X-Forwarded-Method', 'GET'],
          ['X-Forwarded-Uri', '/'],
          ['Host', 'portcullis'],
        ],
      }),
    ],
    [
      'nginx without host',
      call({
        h: [
          ['X-Original-Method', 'GET'],
          ['X-Original-URI', '/'],
        ],
      }),
    ],
    ['Envoy without host', call({ url: '/authz/x' })],
  ];
  for (const [name, c] of bad) {
    it(`rejects: ${name}`, () => {
      const p = parse(c);
      expect(p.ok).toBe(false);
      expect((p as { reason: string }).reason).toMatch(/^forward_auth_/);
    });
  }
});

describe('TrustedProxies', () => {
  const t = new TrustedProxies(['127.0.0.1/32', '::1/128', '10.1.0.0/16', '192.0.2.7']);
  it.each([
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['::1', true],
    ['10.1.200.3', true],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['10.2.0.1', false],
    ['127.0.0.2', false],
    ['', false],
    ['garbage', false],
  ])('%s -> %s', (ip, expected) => expect(t.has(ip)).toBe(expected));
});

describe('forward_auth config', () => {
  it('defaults: disabled, /authz, loopback only', () => {
    expect(parseConfig('{}').forward_auth).toEqual({
      enabled: false,
      path_prefix: '/authz',
      trusted_proxies: ['127.0.0.1/32', '::1/128'],
    });
  });
  it.each([
    ['trusted_proxies: [10.0.0.0/33]', 'forward_auth.trusted_proxies[0]'],
    ['trusted_proxies: [10.0.0/8]', 'forward_auth.trusted_proxies[0]'],
    ['trusted_proxies: ["::1/129"]', 'forward_auth.trusted_proxies[0]'],
    ['trusted_proxies: []', 'forward_auth.trusted_proxies'],
    ['path_prefix: authz', 'forward_auth.path_prefix'],
    ['path_prefix: /authz/', 'forward_auth.path_prefix'],
    ['path_prefix: /metrics', 'forward_auth.path_prefix'],
    ['path_prefix: "/a?b"', 'forward_auth.path_prefix'],
  ])('rejects %s at %s', (yaml, path) => {
    try {
      parseConfig(`forward_auth: { ${yaml} }`);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.join('\n')).toContain(path);
    }
  });
});
