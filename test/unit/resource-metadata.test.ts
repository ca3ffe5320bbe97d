// Protected resource metadata (RFC 9728): identifiers, well-known paths, the document, signed
// metadata, the answer at the well-known path, the config schema, and audience binding (RFC 8707).
import { decodeProtectedHeader, generateKeyPair, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  compileProtectedResources,
  joseMetadataSigner,
  metadataDocument,
  prepareProtectedResource,
  ProtectedResources,
} from '../../src/resources/metadata.ts';
import { audienceMatchesResource, resourceIdentifierIssue, resourceLocation } from '../../src/resources/resource-id.ts';
import {
  mcpRouteSchema,
  protectedResourceSchema,
  protectedResourcesSchema,
  resourceConfigIssues,
  stepUpSchema,
  type ProtectedResourceConfig,
} from '../../src/resources/schema.ts';

const AS = 'https://idp.example.com';
const entry = (over: Record<string, unknown> = {}): ProtectedResourceConfig =>
  protectedResourceSchema.parse({
    resource: 'https://mcp.example.com/mcp',
    authorization_servers: [AS],
    routes: ['mcp'],
    ...over,
  });

describe('resource identifiers (RFC 9728 §1.2, RFC 8707 §2)', () => {
  it('accepts https URLs written as clients send them: root with or without "/", a path, a port', () => {
    for (const ok of [
      'https://api.example.com',
      'https://api.example.com/',
      'https://api.example.com/mcp',
      'https://api.example.com:8443/a/mcp/',
      'https://[2001:db8::1]/mcp',
    ]) {
      expect(resourceIdentifierIssue(ok), ok).toBeUndefined();
    }
  });

  it('refuses what cannot be the identifier, saying how to write it', () => {
    const cases: [string, RegExp][] = [
      ['api.example.com/mcp', /not an absolute URL/],
      ['http://api.example.com/mcp', /https/],
      ['https://user:pw@api.example.com/mcp', /user name or password/],
      ['https://api.example.com/mcp#x', /fragment/],
      ['https://api.example.com/mcp#', /fragment/],
      ['https://api.example.com/mcp?tenant=a', /query/],
      ['https://API.example.com/mcp', /"https:\/\/api\.example\.com\/mcp"/],
      ['HTTPS://api.example.com/mcp', /"https:\/\/api\.example\.com\/mcp"/],
      ['https://api.example.com:443/mcp', /"https:\/\/api\.example\.com\/mcp"/],
      ['https://api.example.com/a/../mcp', /"https:\/\/api\.example\.com\/mcp"/],
      ['https://api.example.com/a b', /"https:\/\/api\.example\.com\/a%20b"/],
      ['https://api.example.com/a"b', /a%22b/],
    ];
    for (const [value, message] of cases) expect(resourceIdentifierIssue(value), value).toMatch(message);
  });

  it('allows http only with allow_http', () => {
    expect(resourceIdentifierIssue('http://localhost:8080/mcp', true)).toBeUndefined();
    expect(resourceIdentifierIssue('http://localhost:8080/mcp', false)).toMatch(/allow_http/);
    expect(resourceIdentifierIssue('ftp://localhost/mcp', true)).toMatch(/https/);
  });
});

describe('well-known location (RFC 9728 §3.1)', () => {
  it('root resource: the bare well-known path, with or without the terminating slash', () => {
    for (const r of ['https://api.example.com', 'https://api.example.com/']) {
      expect(resourceLocation(r)).toEqual({
        origin: 'https://api.example.com',
        hostKey: 'api.example.com',
        wellKnownPath: '/.well-known/oauth-protected-resource',
        wellKnownPaths: ['/.well-known/oauth-protected-resource'],
        metadataUrl: 'https://api.example.com/.well-known/oauth-protected-resource',
      });
    }
  });

  it('path-suffixed resource: the well-known string goes between host and path (the RFC example)', () => {
    expect(resourceLocation('https://resource.example.com/resource1')).toEqual({
      origin: 'https://resource.example.com',
      hostKey: 'resource.example.com',
      wellKnownPath: '/.well-known/oauth-protected-resource/resource1',
      wellKnownPaths: ['/.well-known/oauth-protected-resource/resource1'],
      metadataUrl: 'https://resource.example.com/.well-known/oauth-protected-resource/resource1',
    });
  });

  it('keeps the port in the URL, and answers both readings of a terminating slash', () => {
    const loc = resourceLocation('https://api.example.com:8443/tenants/a/mcp/');
    expect(loc.metadataUrl).toBe('https://api.example.com:8443/.well-known/oauth-protected-resource/tenants/a/mcp');
    expect(loc.wellKnownPaths).toEqual([
      '/.well-known/oauth-protected-resource/tenants/a/mcp',
      '/.well-known/oauth-protected-resource/tenants/a/mcp/',
    ]);
    expect(loc.hostKey).toBe('api.example.com');
  });
});

describe('the metadata document (RFC 9728 §2)', () => {
  it('path-suffixed resource: members in order, zero-valued ones left out (RFC 9728 §3.2)', () => {
    const doc = metadataDocument(entry({ scopes_supported: ['mcp:use', 'files:read'], resource_name: 'Files MCP' }));
    expect(JSON.stringify(doc)).toBe(
      '{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://idp.example.com"],"scopes_supported":["mcp:use","files:read"],"bearer_methods_supported":["header"],"resource_name":"Files MCP"}',
    );
  });

  it('root resource with every configurable member, and the enforcement members from elsewhere', () => {
    const doc = metadataDocument(
      entry({
        resource: 'https://api.example.com',
        authorization_servers: [AS, 'https://login.example.org/tenant-a'],
        resource_documentation: 'https://docs.example.com/api',
        resource_policy_uri: 'https://example.com/policy',
        resource_tos_uri: 'https://example.com/tos',
        jwks_uri: 'https://api.example.com/.well-known/jwks.json',
        resource_signing_alg_values_supported: ['ES256'],
        authorization_details_types_supported: ['payment_initiation'],
      }),
      {
        dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
        dpop_bound_access_tokens_required: true,
        tls_client_certificate_bound_access_tokens: false,
      },
    );
    expect(doc).toEqual({
      resource: 'https://api.example.com',
      authorization_servers: [AS, 'https://login.example.org/tenant-a'],
      bearer_methods_supported: ['header'],
      resource_documentation: 'https://docs.example.com/api',
      resource_policy_uri: 'https://example.com/policy',
      resource_tos_uri: 'https://example.com/tos',
      jwks_uri: 'https://api.example.com/.well-known/jwks.json',
      resource_signing_alg_values_supported: ['ES256'],
      authorization_details_types_supported: ['payment_initiation'],
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
      dpop_bound_access_tokens_required: true,
    });
    expect(doc).not.toHaveProperty('tls_client_certificate_bound_access_tokens');
  });
});

describe('signed metadata (RFC 9728 §2.2)', () => {
  it('is a JWT of the members plus iss and iat, without signed_metadata, verifiable with the public key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const now = Date.parse('2026-12-01T00:00:00Z');
    const set = await compileProtectedResources([entry({ signed_metadata: {}, scopes_supported: ['mcp:use'] })], {
      signer: joseMetadataSigner({ privateKey, alg: 'ES256', kid: 'k1' }),
      now: () => now,
    });
    const body = JSON.parse(set.list[0].body) as Record<string, unknown>;
    expect(typeof body.signed_metadata).toBe('string');
    const jwt = body.signed_metadata as string;
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    const { payload } = await jwtVerify(jwt, publicKey, {
      issuer: 'https://mcp.example.com/mcp',
      currentDate: new Date(now),
    });
    const { signed_metadata: _, ...members } = body;
    expect(payload).toEqual({ ...members, iss: 'https://mcp.example.com/mcp', iat: now / 1000 });
    // The plain members equal the signed ones: a client preferring the signed values sees the same.
    expect(set.list[0].document).toEqual(members);
  });

  it('takes the configured issuer, and refuses to load without a signer', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const set = await compileProtectedResources(
      [entry({ signed_metadata: { issuer: 'https://portcullis.example.com' } })],
      {
        signer: joseMetadataSigner({ privateKey, alg: 'EdDSA' }),
      },
    );
    const jwt = (JSON.parse(set.list[0].body) as { signed_metadata: string }).signed_metadata;
    await expect(jwtVerify(jwt, publicKey, { issuer: 'https://portcullis.example.com' })).resolves.toBeTruthy();
    await expect(compileProtectedResources([entry({ signed_metadata: {} })])).rejects.toThrow(
      /protected_resources\[0\]\.signed_metadata: no signing key/,
    );
  });
});

describe('answering at the well-known path', () => {
  const set = new ProtectedResources([
    prepareProtectedResource(entry()),
    prepareProtectedResource(entry({ resource: 'https://api.example.com', routes: ['orders'] })),
    prepareProtectedResource(entry({ resource: 'https://a.example.com/shared', routes: ['a'] })),
    prepareProtectedResource(entry({ resource: 'https://b.example.com/shared', routes: ['b'] })),
  ]);
  const mcpBody = prepareProtectedResource(entry()).body;

  it('GET: 200 application/json with the document, cacheable, readable from any origin', () => {
    expect(set.wellKnownResponse('GET', 'mcp.example.com', '/.well-known/oauth-protected-resource/mcp')).toEqual({
      status: 200,
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(mcpBody)),
        'cache-control': 'public, max-age=300',
        'x-content-type-options': 'nosniff',
        'access-control-allow-origin': '*',
      },
      body: mcpBody,
    });
    const root = set.wellKnownResponse('GET', 'API.example.com:443', '/.well-known/oauth-protected-resource?x=1');
    expect(JSON.parse(root!.body)).toMatchObject({ resource: 'https://api.example.com' });
  });

  it('HEAD: the same headers (content-length of the document), no body; OPTIONS: a CORS preflight; others: 405', () => {
    const head = set.wellKnownResponse('HEAD', 'mcp.example.com', '/.well-known/oauth-protected-resource/mcp')!;
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(mcpBody)));
    expect(set.wellKnownResponse('OPTIONS', 'mcp.example.com', '/.well-known/oauth-protected-resource/mcp')).toEqual({
      status: 204,
      headers: {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, HEAD, OPTIONS',
        'access-control-allow-headers': '*',
        'access-control-max-age': '86400',
      },
      body: '',
    });
    expect(set.wellKnownResponse('POST', 'mcp.example.com', '/.well-known/oauth-protected-resource/mcp')).toEqual({
      status: 405,
      headers: { allow: 'GET, HEAD, OPTIONS', 'access-control-allow-origin': '*' },
      body: '',
    });
  });

  it('matches the path as received, exactly: no dot segments, no other case, no encoding, no other prefix', () => {
    for (const p of [
      '/.well-known/oauth-protected-resource/x/../mcp',
      '/.well-known/oauth-protected-resource/./mcp',
      '/.well-known/oauth-protected-resource/MCP',
      '/.well-known/oauth-protected-resource/%6dcp',
      '/.well-known/oauth-protected-resource/mcp/extra',
      '/.well-known/oauth-protected-resource//mcp',
      '/mcp/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resourcemcp',
    ]) {
      expect(set.wellKnownResponse('GET', 'mcp.example.com', p), p).toBeUndefined();
    }
  });

  it('picks the resource by Host; a path only one resource uses is answered whatever the Host', () => {
    const a = set.wellKnownResponse('GET', 'a.example.com', '/.well-known/oauth-protected-resource/shared')!;
    const b = set.wellKnownResponse('GET', 'b.example.com', '/.well-known/oauth-protected-resource/shared')!;
    expect(JSON.parse(a.body).resource).toBe('https://a.example.com/shared');
    expect(JSON.parse(b.body).resource).toBe('https://b.example.com/shared');
    // Two resources share this path: a third host cannot be told which.
    expect(
      set.wellKnownResponse('GET', 'c.example.com', '/.well-known/oauth-protected-resource/shared'),
    ).toBeUndefined();
    // The ops listener reached directly (Host: localhost:9192): the one resource at that path.
    expect(
      JSON.parse(set.wellKnownResponse('GET', 'localhost:9192', '/.well-known/oauth-protected-resource/mcp')!.body)
        .resource,
    ).toBe('https://mcp.example.com/mcp');
  });

  it('finds the resource of a route, and its metadata URL for challenges', () => {
    expect(set.forRoute('mcp')?.metadataUrl).toBe('https://mcp.example.com/.well-known/oauth-protected-resource/mcp');
    expect(set.forRoute('orders')?.metadataUrl).toBe('https://api.example.com/.well-known/oauth-protected-resource');
    expect(set.forRoute('other')).toBeUndefined();
  });
});

describe('protected_resources schema', () => {
  const issues = (value: unknown) => {
    const r = protectedResourcesSchema.safeParse(value);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  const base = { authorization_servers: [AS] };

  it('a valid list parses, with defaults', () => {
    expect(
      protectedResourcesSchema.parse([{ ...base, resource: 'https://mcp.example.com/mcp', routes: ['mcp'] }]),
    ).toEqual([
      { resource: 'https://mcp.example.com/mcp', authorization_servers: [AS], routes: ['mcp'], allow_http: false },
    ]);
    expect(protectedResourcesSchema.parse(undefined)).toEqual([]);
  });

  it('refuses a duplicate resource, a shared well-known location, and a route in two resources', () => {
    expect(
      issues([
        { ...base, resource: 'https://api.example.com', routes: ['a'] },
        { ...base, resource: 'https://api.example.com', routes: ['b'] },
      ]),
    ).toEqual(['1.resource: resource "https://api.example.com" is also protected_resources[0]']);
    expect(
      issues([
        { ...base, resource: 'https://api.example.com', routes: ['a'] },
        { ...base, resource: 'https://api.example.com/', routes: ['b'] },
      ]),
    ).toEqual([
      '1.resource: its metadata would be served at /.well-known/oauth-protected-resource on the same host as protected_resources[0]: give one of them another path',
    ]);
    expect(
      issues([
        { ...base, resource: 'https://api.example.com/mcp', routes: ['a'] },
        { ...base, resource: 'https://api.example.com:8443/mcp', routes: ['b'] },
      ]),
    ).toHaveLength(1);
    expect(
      issues([
        { ...base, resource: 'https://a.example.com/mcp', routes: ['a', 'shared'] },
        { ...base, resource: 'https://b.example.com/mcp', routes: ['shared'] },
      ]),
    ).toEqual(['1.routes.0: route "shared" already belongs to protected_resources[0]']);
  });

  it('checks each entry: identifier, authorization servers, URLs, scopes, routes (every problem at once)', () => {
    expect(
      issues([
        {
          resource: 'https://API.example.com/mcp?x',
          authorization_servers: ['https://idp.example.com?tenant=a', 'http://idp.example.com', 'idp'],
          routes: ['mcp', 'mcp', 'bad name'],
          scopes_supported: ['files read', 'a"b', 'ok:scope'],
          jwks_uri: 'http://api.example.com/jwks.json',
          resource_documentation: 'https://docs.example.com/#top',
        },
      ]),
    ).toEqual([
      '0.routes.2: letters, digits, _ . : -',
      '0.scopes_supported.0: a scope is visible ASCII without spaces, quotes or backslashes (RFC 6750 §3), so it can be named in a challenge',
      '0.scopes_supported.1: a scope is visible ASCII without spaces, quotes or backslashes (RFC 6750 §3), so it can be named in a challenge',
      '0.resource: must not have a query: its metadata URL could not be routed by path (RFC 8707 §2 advises against one too)',
      '0.authorization_servers.0: must not have a query (RFC 8414 §2: an issuer has none)',
      '0.authorization_servers.1: must be an https URL (http only with allow_http: true, for local development)',
      '0.authorization_servers.2: is not an absolute URL',
      '0.resource_documentation: must not have a fragment',
      '0.jwks_uri: must be an https URL (http only with allow_http: true, for local development)',
      '0.routes.1: route "mcp" is listed twice',
    ]);
  });

  it('allow_http lets a local walkthrough use http URLs', () => {
    expect(
      issues([
        {
          resource: 'http://localhost:8080/mcp',
          authorization_servers: ['http://localhost:3000'],
          routes: ['mcp'],
          allow_http: true,
        },
      ]),
    ).toEqual([]);
  });

  it('refuses unknown members and an empty routes or authorization_servers list', () => {
    expect(issues([{ ...base, resource: 'https://a.example.com', routes: ['a'], audience: 'x' }])).toEqual([
      '0: Unrecognized key: "audience"',
    ]);
    expect(issues([{ resource: 'https://a.example.com', authorization_servers: [], routes: [] }])).toHaveLength(2);
  });
});

describe('resourceConfigIssues: what needs the whole config', () => {
  const resources = protectedResourcesSchema.parse([
    {
      resource: 'https://mcp.example.com/mcp',
      authorization_servers: [AS],
      routes: ['mcp', 'gone', 'docs'],
      signed_metadata: {},
    },
  ]);
  const routes = [
    {
      name: 'mcp',
      auth: ['jwt'],
      mcp: mcpRouteSchema.parse({}),
      step_up: stepUpSchema.parse({ max_age_seconds: 300 }),
    },
    { name: 'docs', public: true },
    { name: 'keys', auth: ['api-key', 'jwt'], step_up: stepUpSchema.parse({ acr_values: ['urn:mfa'] }) },
    { name: 'open', public: true, mcp: {}, step_up: {} },
  ];

  it('names every problem at its config path', () => {
    expect(resourceConfigIssues(resources, routes, { signingKeys: false })).toEqual([
      { path: ['protected_resources', 0, 'routes', 1], message: 'no route named "gone" (routes[].name)' },
      {
        path: ['protected_resources', 0, 'routes', 2],
        message: 'route "docs" is public: it has no token to bind to the resource',
      },
      {
        path: ['protected_resources', 0, 'signed_metadata'],
        message:
          'needs a signing key: configure credentials.introspection.phantom_token.keys (every node must sign with the same key)',
      },
      {
        path: ['routes', 2, 'step_up'],
        message:
          'API keys carry no acr or auth_time, so every API-key request would be refused: remove api-key from auth, or step_up',
      },
      { path: ['routes', 3, 'step_up'], message: 'a public route has no token to check acr or auth_time in' },
      { path: ['routes', 3, 'mcp'], message: 'a public route has no token whose scopes a tool could require' },
    ]);
  });

  it('a consistent config has none', () => {
    const ok = protectedResourcesSchema.parse([
      { resource: 'https://mcp.example.com/mcp', authorization_servers: [AS], routes: ['mcp'], signed_metadata: {} },
    ]);
    expect(resourceConfigIssues(ok, [routes[0]], { signingKeys: true })).toEqual([]);
  });
});

describe('audienceMatchesResource (RFC 8707 §2, RFC 7519 §4.1.3)', () => {
  const R = 'https://mcp.example.com/mcp';

  it('a token for the resource: aud is the identifier, alone or among others', () => {
    expect(audienceMatchesResource(R, R)).toBe(true);
    expect(audienceMatchesResource(['https://other.example.com', R], R)).toBe(true);
  });

  it('a token for the whole API, for another resource, or for none is refused', () => {
    for (const aud of [
      'https://mcp.example.com',
      'https://mcp.example.com/',
      'https://mcp.example.com/mcp2',
      'https://mcp.example.com/mcp/tools',
      'https://other.example.com/mcp',
      'mcp',
      '',
      [],
      ['https://mcp.example.com'],
      undefined,
      null,
      42,
      { aud: R },
      [42, null, { R }],
    ]) {
      expect(audienceMatchesResource(aud, R), JSON.stringify(aud)).toBe(false);
    }
  });

  it('no normalization but ASCII case in scheme and host: no trailing slash, default port, escapes, dot segments, path case, Unicode folding', () => {
    expect(audienceMatchesResource('HTTPS://MCP.Example.COM/mcp', R)).toBe(true);
    for (const aud of [
      'https://mcp.example.com/mcp/',
      'https://mcp.example.com:443/mcp',
      'https://mcp.example.com/%6dcp',
      'https://mcp.example.com/x/../mcp',
      'https://mcp.example.com/MCP',
      'https://mcp.example.com/mcp?',
      'https://mcp.example.com/mcp#',
      'https://user@mcp.example.com/mcp',
    ]) {
      expect(audienceMatchesResource(aud, R), aud).toBe(false);
    }
    // U+212A KELVIN SIGN lower-cases to "k" in JavaScript: still not the same host.
    const kelvin = 'https://kelvin.example.com/mcp';
    expect(audienceMatchesResource('https://\u212Aelvin.example.com/mcp', kelvin)).toBe(false);
    expect(audienceMatchesResource('https://KELVIN.example.com/mcp', kelvin)).toBe(true);
  });

  it('a root resource: only the identifier as written', () => {
    expect(audienceMatchesResource('https://api.example.com', 'https://api.example.com')).toBe(true);
    expect(audienceMatchesResource('https://api.example.com/', 'https://api.example.com')).toBe(false);
    expect(audienceMatchesResource('https://API.EXAMPLE.COM', 'https://api.example.com')).toBe(true);
  });
});
