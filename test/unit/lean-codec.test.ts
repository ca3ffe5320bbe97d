// The lean Check codec (src/envoy/codec/) against the
// proto-loader path it replaces: the same AuthzRequest from the same bytes, and byte-identical
// CheckResponses for the same Decision, over a broad set of requests and decisions.
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import { deny } from '../../src/core/decision.ts';
import { DENY_ERRORS, DENY_REASONS, type DenyReason } from '../../src/core/reasons.ts';
import type { Allow, Decision, Identity } from '../../src/core/types.ts';
import { toAuthzRequest, toCheckResponse, type CheckRequestMsg } from '../support/check-oracle.ts';
import { decodeCheckRequest } from '../../src/envoy/codec/decoder.ts';
import { encodeCheckResponse } from '../../src/envoy/codec/encoder.ts';
import { AUTHZ_SERVICE, loadAuthzPackageDefinition } from '../../src/envoy/protos.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';
import { MemoryRateLimiter } from '../../src/stores/ratelimit.ts';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { envoyCheckRequest, type EnvoyRequestInit } from '../support/envoy.ts';
import { decideDeps } from '../support/deps.ts';
import { inheritsNothing } from '../support/objects.ts';

const check = (loadAuthzPackageDefinition()[AUTHZ_SERVICE] as grpc.ServiceDefinition).Check;
const viaProtoLoader = (bytes: Buffer) => toAuthzRequest(check.requestDeserialize(bytes) as CheckRequestMsg);
const serialize = (obj: unknown) => check.requestSerialize(obj);

function expectSameRequest(bytes: Buffer) {
  const lean = decodeCheckRequest(bytes);
  const reference = viaProtoLoader(bytes);
  expect(lean).toEqual(reference);
  // Same key order too (logs and header joins depend on it), and maps that inherit nothing.
  expect(Object.keys(lean.headers)).toEqual(Object.keys(reference.headers));
  expect(inheritsNothing(lean.headers)).toBe(true);
  expect(inheritsNothing(reference.headers)).toBe(true);
  expect(Object.getPrototypeOf(lean.contextExtensions)).toBeNull();
}

describe('lean CheckRequest decoder = proto-loader + toAuthzRequest', () => {
  const inits: Array<[string, EnvoyRequestInit]> = [
    ['minimal', {}],
    [
      'api key and query',
      { path: '/v1/orders/7?page=2&x=%2F', headers: { 'X-API-Key': 'pcl_abc', 'x-user-id': 'admin' } },
    ],
    ['bearer', { method: 'POST', path: '/v1/orders', headers: { authorization: 'Bearer eyJ.a.b' } }],
    [
      'repeated header lines join with ","',
      {
        headers: [
          ['X-Forwarded-For', '1.1.1.1'],
          ['x-forwarded-for', '2.2.2.2'],
          ['Cookie', 'a=1'],
          ['cookie', 'b=2'],
        ],
      },
    ],
    [
      'raw header_map',
      {
        rawHeaders: true,
        headers: [
          ['Authorization', 'Bearer t'],
          ['X-Dup', 'a'],
          ['x-dup', 'b'],
          ['x-empty', ''],
        ],
      },
    ],
    [
      'unicode and empty values',
      { path: '/caf%C3%A9', headers: { 'x-name': 'Zoë ☃ 𝄞', 'x-empty': '', 'x-long': 'v'.repeat(5000) } },
    ],
    ['prototype-looking names', { headers: { constructor: 'c', __proto__: 'p', tostring: 't', hasownproperty: 'h' } }],
    ['numeric-looking names keep object order', { headers: { '123': 'n', 'x-a': 'a', '7': 's' } }],
    [
      'context extensions',
      { contextExtensions: { 'portcullis.route': 'orders-read', 'portcullis.scopes': 'a b', '': 'empty-key' } },
    ],
    ['ipv6 source', { sourceIp: '2001:db8::1' }],
    ['plain http scheme', { scheme: 'http' }],
    [
      'peer certificate and principal',
      {
        peerCertificatePem: '-----BEGIN CERTIFICATE-----\nMIIB+zCCAaGgAwIBAgIU\n-----END CERTIFICATE-----\n',
        principal: 'spiffe://example.org/ns/default/sa/web',
      },
    ],
    ['host and method as sent', { host: 'API.Example.COM:8443', method: 'PATCH', scheme: 'http' }],
    ['no source ip', { sourceIp: '' }],
  ];
  for (const [name, init] of inits) {
    it(name, () => expectSameRequest(serialize(envoyCheckRequest(init))));
  }

  it('header names: decoded once and reused, yet always the bytes that arrived', () => {
    // Names repeat across Checks and come back from a bounded cache keyed by a hash of their bytes:
    // a name must never come back as another one, past the bound, with case, UTF-8 or length.
    const rnd = (n: number) => Array.from({ length: n }, (_, i) => `x-${((i * 2654435761) >>> 0).toString(36)}-${i}`);
    // envoyCheckRequest lowercases names as Envoy does; `direct` sends them exactly as given.
    const direct = (headers: Record<string, string>) =>
      serialize({ attributes: { request: { http: { method: 'GET', path: '/', headers } } } });
    const many = rnd(3000);
    for (let i = 0; i < many.length; i += 100) {
      const names = many.slice(i, i + 100);
      expectSameRequest(
        serialize(envoyCheckRequest({ headers: Object.fromEntries(names.map((n) => [n, n.toUpperCase()])) })),
      );
      // The same names again, now from the cache, with other values; then in upper case.
      expectSameRequest(
        serialize(envoyCheckRequest({ headers: Object.fromEntries(names.map((n, j) => [n, String(j)])) })),
      );
      expectSameRequest(direct(Object.fromEntries(names.map((n, j) => [j % 2 ? n.toUpperCase() : n, String(j)]))));
    }
    const odd = {
      'x-zoë': 'utf8',
      'X-ZOË': 'utf8 upper',
      'X-Mixed-Case': 'm',
      'x-mixed-case': 'lower',
      ['x-' + 'l'.repeat(80)]: 'long',
      ['X-' + 'L'.repeat(80)]: 'LONG',
      'x-l': 'short',
      '': 'empty name',
    };
    expectSameRequest(direct(odd));
    expectSameRequest(direct(odd));
    expectSameRequest(serialize(envoyCheckRequest({ rawHeaders: true, headers: Object.entries(odd) })));
    // Two names with the same 32-bit FNV-1a hash (found by search): the second is not the first.
    expectSameRequest(direct({ 'x-fiuehmts': '1' }));
    expectSameRequest(direct({ 'x-jdceoihu': '2' }));
    expect(Object.keys(decodeCheckRequest(direct({ 'x-fiuehmts': '1', 'x-jdceoihu': '2' })).headers)).toEqual([
      'x-fiuehmts',
      'x-jdceoihu',
    ]);
    // A name first seen in lower case, then in mixed case: each decodes as sent, and merges as before.
    expectSameRequest(direct({ 'x-seen': 'a' }));
    expectSameRequest(direct({ 'X-Seen': 'b', 'x-seen': 'c' }));
    expect(decodeCheckRequest(direct({ 'X-Seen': 'b', 'x-seen': 'c' })).headers['x-seen']).toBe('b,c');
  });

  it('empty message, empty attributes, request without http', () => {
    expectSameRequest(serialize({}));
    expectSameRequest(serialize({ attributes: {} }));
    expectSameRequest(serialize({ attributes: { request: {} } }));
    expectSameRequest(serialize({ attributes: { request: { http: {} }, source: {} } }));
    expectSameRequest(serialize({ attributes: { source: { address: { socket_address: {} } } } }));
    expectSameRequest(serialize({ attributes: { source: { address: { pipe: { path: '/tmp/s' } } } } }));
  });

  it('pseudo-headers stand in for method, path and host when the http fields are absent', () => {
    expectSameRequest(
      serialize({
        attributes: {
          request: {
            http: {
              headers: { ':method': 'DELETE', ':path': '/x?y', ':authority': 'h.example', 'x-request-id': 'r1' },
            },
          },
        },
      }),
    );
    expectSameRequest(serialize({ attributes: { request: { http: { headers: { host: 'only-host.example' } } } } }));
  });

  it('header_map with an empty list falls back to the headers map; raw_value wins over value', () => {
    expectSameRequest(
      serialize({ attributes: { request: { http: { header_map: { headers: [] }, headers: { a: '1' } } } } }),
    );
    expectSameRequest(
      serialize({
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [
                  { key: 'A', value: 'v', raw_value: Buffer.from('raw') },
                  { key: 'b', value: 'only-value' },
                  { value: 'no-key' },
                ],
              },
            },
          },
        },
      }),
    );
  });

  it('wire oddities are read the way protobufjs reads them', () => {
    const attrs = (http: Record<string, unknown>, ip: string) =>
      serialize({ attributes: { request: { http }, source: { address: { socket_address: { address: ip } } } } });
    const a = attrs({ method: 'GET', path: '/a', headers: { x: '1', Y: '2' } }, '10.0.0.1');
    const b = attrs({ method: 'PUT', headers: { y: '3' } }, '10.0.0.2');
    // A repeated sub-message field replaces the earlier one; a repeated map key: the last wins.
    expectSameRequest(Buffer.concat([a, b]));
    const dupKey = serialize({ attributes: { request: { http: { headers: { k: 'first' } } } } });
    const dupKey2 = serialize({ attributes: { request: { http: { headers: { k: 'second' } } } } });
    expectSameRequest(Buffer.concat([dupKey, dupKey2]));
    // Unknown fields (a newer Envoy) are skipped.
    const unknown = protobuf.Writer.create()
      .uint32((99 << 3) | 2)
      .string('future')
      .uint32((98 << 3) | 0)
      .uint64(7)
      .finish();
    expectSameRequest(Buffer.concat([a, Buffer.from(unknown)]));
  });

  it('body and raw_body (with_request_body) are read as the oracle reads them; empty ones are no body', () => {
    const base = envoyCheckRequest({ path: '/mcp', headers: { 'x-envoy-auth-partial-body': 'false' } });
    const withBody = (http: Record<string, unknown>) =>
      serialize({
        ...base,
        attributes: {
          ...base.attributes,
          request: { ...base.attributes.request, http: { ...base.attributes.request.http, ...http } },
        },
      });
    const text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"déjà"}}';
    const a = withBody({ body: text });
    expectSameRequest(a);
    expect(decodeCheckRequest(a).body).toBe(text);
    expect(decodeCheckRequest(a).rawBody).toBeUndefined();
    const raw = Buffer.from([0x7b, 0xff, 0x7d]);
    const b = withBody({ raw_body: raw });
    expectSameRequest(b);
    expect(Buffer.from(decodeCheckRequest(b).rawBody!)).toEqual(raw);
    const both = withBody({ body: 'x', raw_body: raw });
    expectSameRequest(both);
    expect(decodeCheckRequest(both).body).toBe('x');
    const empty = decodeCheckRequest(withBody({ body: '', raw_body: Buffer.alloc(0) }));
    expect('body' in empty || 'rawBody' in empty).toBe(false);
  });

  it('fields Portcullis ignores (time, destination, size, metadata) do not change the result', () => {
    const base = envoyCheckRequest({ path: '/p', headers: { 'x-api-key': 'k' } });
    const full = {
      ...base,
      attributes: {
        ...base.attributes,
        request: {
          ...base.attributes.request,
          http: {
            ...base.attributes.request.http,
            size: '7',
            query: 'q',
            fragment: 'f',
          },
        },
        metadata_context: { filter_metadata: { f: { fields: { a: { stringValue: 'b' } } } } },
        tls_session: { sni: 'api.example.com' },
      },
    };
    expectSameRequest(serialize(full));
    expect(decodeCheckRequest(serialize(full))).toEqual(decodeCheckRequest(serialize(base)));
  });

  it('truncated bytes throw (grpc-js then fails the call) rather than decode to something', () => {
    const bytes = serialize(envoyCheckRequest({ headers: { 'x-api-key': 'k' } }));
    expect(() => decodeCheckRequest(bytes.subarray(0, bytes.length - 3))).toThrow();
    expect(() => viaProtoLoader(bytes.subarray(0, bytes.length - 3))).toThrow();
  });
});

describe('lean CheckResponse encoder = proto-loader serialization of toCheckResponse', () => {
  type AllowFields = Allow;
  const expectSameBytes = (d: Decision) => {
    const reference = check.responseSerialize(toCheckResponse(d));
    const lean = Buffer.from(encodeCheckResponse(d));
    expect(lean.toString('hex')).toBe(reference.toString('hex'));
  };

  const identity: Identity = {
    method: 'jwt',
    subject: 'user-1',
    clientId: 'web',
    scopes: ['a', 'b'],
    issuer: 'https://idp',
  };

  it('an MCP call: mcp_tool in the metadata, and an allow with one is never served from kept bytes', () => {
    // One `set` list for both, as HeaderPolicy gives for one identity and route: only the tool differs.
    const set = Object.freeze([{ name: 'x-user-id', value: 'user-1' }]);
    const allow = (tool: string): Decision => ({
      allowed: true,
      status: 200,
      set,
      remove: ['authorization'],
      removeQuery: [],
      responseHeaders: [],
      reason: 'allowed',
      route: 'mcp',
      identity,
      mcp: { method: 'tools/call', tool, toolPattern: 'get_*' },
    });
    expectSameBytes(allow('get_weather'));
    expectSameBytes(allow('get_time'));
    expect(Buffer.from(encodeCheckResponse(allow('get_time'))).toString('latin1')).toContain('get_time');
    expectSameBytes({
      ...deny('scope_missing', 'r', { route: 'mcp', identity }),
      mcp: { method: 'tools/call', tool: 'ü' },
    });
  });

  it('hand-built decisions: every field, empty lists, unicode, every deny status', () => {
    expectSameBytes({
      allowed: true,
      status: 200,
      set: [],
      remove: [],
      removeQuery: [],
      responseHeaders: [],
      reason: 'public_route',
      route: 'public',
      identity: undefined,
    });
    expectSameBytes({
      allowed: true,
      status: 200,
      set: [
        { name: 'x-user-id', value: 'Zoë ☃' },
        { name: 'x-empty', value: '' },
      ],
      remove: ['x-api-key', 'x-auth-foo'],
      removeQuery: ['api_key'],
      responseHeaders: [{ name: 'ratelimit', value: '"p";r=1;t=60' }],
      reason: 'allowed',
      route: 'r',
      identity: { ...identity, keyId: 'key_1' },
    });
    expectSameBytes({
      allowed: true,
      status: 200,
      set: [{ name: 'a', value: 'b' }],
      remove: [],
      removeQuery: [],
      responseHeaders: [],
      reason: 'allowed',
      route: 'r',
      identity: { method: 'api-key', scopes: [] },
    });
    // One reason of every deny error (so every status and challenge).
    for (const error of Object.keys(DENY_ERRORS)) {
      const reason = (Object.keys(DENY_REASONS) as DenyReason[]).find((r) => DENY_REASONS[r].error === error)!;
      expectSameBytes(deny(reason, 'api.example.com'));
      expectSameBytes(
        deny(reason, 'réalm', {
          route: 'orders',
          credential: 'jwt',
          identity,
          scope: ['a', 'b'],
          retryAfterSeconds: 3,
          extraHeaders: [{ name: 'ratelimit-policy', value: '"p";q=1;w=60' }],
        }),
      );
    }
  });

  it('strings at the edges: lone surrogates (short and long), multi-byte, and a response larger than the scratch buffer', () => {
    const allow = (set: Array<{ name: string; value: string }>, subject = 'u') =>
      expectSameBytes({
        allowed: true,
        status: 200,
        set,
        remove: ['x-a'],
        removeQuery: [],
        responseHeaders: [],
        reason: 'allowed',
        route: 'r',
        identity: { method: 'jwt', subject, scopes: [] },
      });
    allow([{ name: 'x-user-id', value: 'a\ud800b' }], '\udc00');
    allow(
      [{ name: 'x-user-id', value: 'lone surrogate in a long value: \ud800 and more text here' }],
      `${'x'.repeat(50)}\ud83d`,
    );
    allow([{ name: 'x-user-id', value: '𝄞'.repeat(20) + 'é'.repeat(39) }]);
    allow(
      [
        { name: 'x-big', value: '€'.repeat(40_000) },
        { name: 'x-after', value: 'small' },
      ],
      's'.repeat(200),
    );
    // The scratch buffer grew; a small response after it is still right.
    allow([{ name: 'x-user-id', value: 'v' }]);
  });

  it('repeated allows for one identity: the bytes follow every field that changes', () => {
    // encodeCheckResponse reuses the last allow's bytes per identity when nothing changed.
    const id: Identity = Object.freeze({
      method: 'api-key',
      subject: 'c',
      clientId: 'c',
      scopes: Object.freeze(['s']),
      keyId: 'key_1',
    });
    const set = Object.freeze([Object.freeze({ name: 'x-client-id', value: 'c' })]);
    const base: AllowFields = {
      allowed: true,
      status: 200,
      set,
      remove: ['x-api-key'],
      removeQuery: [],
      responseHeaders: [],
      reason: 'allowed',
      route: 'orders',
      identity: id,
    };
    // Each variant differs from base in one field, and follows base.
    const variants: AllowFields[] = [
      base,
      { ...base, remove: ['x-api-key'] },
      { ...base, remove: ['x-api-key', 'x-user-id'] },
      { ...base, remove: ['x-user-id', 'x-api-key'] },
      { ...base, remove: [] },
      { ...base, removeQuery: ['api_key'] },
      { ...base, route: 'admin' },
      { ...base, route: 'public' },
      { ...base, reason: 'public_route' },
      {
        ...base,
        set: [
          { name: 'x-client-id', value: 'c' },
          { name: 'authorization', value: 'Bearer minted' },
        ],
      },
      { ...base, set: [{ name: 'x-client-id', value: 'other' }] },
      { ...base, responseHeaders: [{ name: 'ratelimit', value: '"p";r=4;t=60' }] },
      { ...base, responseHeaders: [{ name: 'ratelimit', value: '"p";r=3;t=60' }] },
      { ...base, identity: Object.freeze({ ...id, clientId: 'other' }) },
    ];
    for (const v of variants) {
      expectSameBytes(base);
      expectSameBytes(v);
    }
    // A deny for the same identity is never an allow's bytes.
    expectSameBytes(deny('scope_missing', 'r', { route: 'orders', credential: 'api-key', identity: id }));
    expectSameBytes(base);
  });

  it('decisions from decide() over a real policy and key store', async () => {
    const config = parseConfig(`
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], query_param: api_key, store: { type: memory } }
rate_limits:
  - { name: tight, key: client_id, limit: 1, window_seconds: 60 }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: limited, match: { path_prefix: /v1/limited }, auth: [api-key], rate_limit: tight }
`);
    const policy = compilePolicy(config);
    const keyStore = new MemoryKeyStore();
    const { key } = await createKey(keyStore, 'pcl', { clientId: 'partner', scopes: ['orders:read'] });
    const { key: noScope } = await createKey(keyStore, 'pcl', { clientId: 'other', scopes: [] });
    const deps = decideDeps({ now: Date.now, keyStore, rateLimiter: new MemoryRateLimiter() });
    const inits: EnvoyRequestInit[] = [
      { path: '/public/x', headers: { 'x-user-id': 'spoof', 'x-auth-anything': '1' } },
      { path: '/v1/orders/1', headers: { 'x-api-key': key, 'x-scopes': 'admin' } },
      { path: `/v1/orders/1?api_key=${key}` },
      { path: '/v1/orders/1', headers: { 'x-api-key': noScope } },
      { path: '/v1/orders/1' },
      { path: '/v1/orders/1', headers: { 'x-api-key': 'pcl_bad' } },
      { path: '/v1/orders/1', headers: { authorization: 'Bearer a.b.c' } },
      { path: '/v1/orders/%2e%2e/admin' },
      { path: '/nowhere' },
      { path: '/v1/orders', headers: { 'x-http-method-override': 'DELETE' } },
      { path: '/v1/limited/a', headers: { 'x-api-key': key } },
      { path: '/v1/limited/a', headers: { 'x-api-key': key } },
    ];
    const reasons = new Set<string>();
    // Twice over: the second pass meets the identities' shared header lists and last allows.
    for (const init of [...inits, ...inits.slice(0, -2)]) {
      const bytes = serialize(envoyCheckRequest(init));
      const d = await decide(decodeCheckRequest(bytes), policy, deps);
      reasons.add(`${d.status}:${d.reason}`);
      expectSameBytes(d);
    }
    // The set above really covers allows and the main deny kinds.
    expect([...reasons].map((r) => r.split(':')[0]).sort()).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '429']),
    );
  });

  it('kept allow bytes follow the identity rules: one identity across routes, reasons, header rules and config reloads', async () => {
    // The encoder keeps the last allow's bytes per identity (src/envoy/codec/encoder.ts). An API
    // key's identity is one object for as long as its record lives, across routes and config
    // generations: only the route, the reason and the identity header list tell these allows
    // apart, so bytes kept for one of them must never answer another.
    const yaml = (set: string) => `
realm: api.example.com
headers: { set: { ${set} } }
credentials:
  api_key: { headers: [x-api-key], store: { type: memory } }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
  - { name: admin, match: { path_prefix: /v1/admin }, auth: [api-key] }
`;
    const before = compilePolicy(parseConfig(yaml('x-client-id: client_id, x-route: route')));
    // A reload: the same identity, another header rule (and so another list).
    const reloaded = compilePolicy(parseConfig(yaml('x-client-id: client_id, x-route: route, x-key-id: key_id')));
    // Another generation with rules equal to the first: another list with equal contents.
    const again = compilePolicy(parseConfig(yaml('x-client-id: client_id, x-route: route')));
    const keyStore = new MemoryKeyStore();
    const { key } = await createKey(keyStore, 'pcl', { clientId: 'partner' });
    const deps = decideDeps({ now: Date.now, keyStore });
    const check = async (policy: typeof before, init: EnvoyRequestInit) => {
      const d = await decide(decodeCheckRequest(serialize(envoyCheckRequest(init))), policy, deps);
      expect(d.allowed).toBe(true);
      expectSameBytes(d);
      return d;
    };
    const orders = { path: '/v1/orders/1', headers: { 'x-api-key': key } };
    const admin = { path: '/v1/admin/1', headers: { 'x-api-key': key } };
    const seen: Array<Allow['identity']> = [];
    for (const [policy, init] of [
      [before, orders],
      [before, orders],
      [before, admin],
      [before, orders],
      [reloaded, orders],
      [before, orders],
      [again, orders],
      [before, { ...orders, headers: { ...orders.headers, 'x-route': 'spoofed' } }],
      [before, { path: '/public/x', headers: { 'x-api-key': key } }],
      [before, orders],
    ] as const) {
      const d = (await check(policy, init)) as Allow;
      if (d.identity) seen.push(d.identity);
    }
    // All of them were the one identity object: the memo key alone never decided.
    expect(new Set(seen).size).toBe(1);
  });
});
