// Protected resources end to end: a real Portcullis, a real oidc-provider issuing JWT and opaque
// access tokens (with acr / auth_time when a test asks), CheckRequests over gRPC with Envoy's protos
// carrying real JSON-RPC bodies (with_request_body), and the metadata documents from the ops listener.
// RFC 9728 (metadata, resource_metadata), RFC 8707 (audience), RFC 9470 (step-up), MCP authorization.
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/resources/challenge.ts';
import { applyEnvoy, envoyCheckRequest, type EnvoyRequestInit } from '../support/envoy.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';

const MCP = 'https://mcp.example.com/mcp';
const ROOT = 'https://mcp.example.com';
const ADMIN = 'https://mcp.example.com/admin';
const OTHER = 'https://other.example.com/mcp';
const TOOLS = 'https://mcp.example.com/tools';
const MCP_META = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
const ADMIN_META = 'https://mcp.example.com/.well-known/oauth-protected-resource/admin';
const MFA = 'urn:example:mfa';

let idp: TestIdp;
let svc: TestService;
/** What the IdP adds to the next tokens it issues. */
let extraClaims: Record<string, unknown> | undefined;

beforeAll(async () => {
  idp = await startIdp({
    resources: {
      [MCP]: { scope: 'mcp:read mcp:write mcp:admin', format: 'jwt' },
      [ROOT]: { scope: 'mcp:read mcp:write mcp:admin', format: 'jwt' },
      [OTHER]: { scope: 'mcp:read mcp:write mcp:admin', format: 'jwt' },
      [ADMIN]: { scope: 'admin', format: 'jwt' },
      [TOOLS]: { scope: 'mcp:read', format: 'opaque' },
    },
    extraTokenClaims: () => extraClaims,
  });
  const dir = tempDir();
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  writeFileSync(join(dir, 'phantom.pem'), await exportPKCS8(privateKey));
  svc = await startService(
    `
realm: mcp.example.com
headers: { forward_credentials: true }
credentials:
  jwt:
    - issuer: ${idp.issuer}
      audiences: [${MCP}, ${ROOT}, ${OTHER}, ${ADMIN}]
      jwks_uri: ${idp.jwksUri}
      allow_http: true
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [${MCP}, ${TOOLS}]
    phantom_token: { enabled: true, keys: [{ kid: meta-1, private_key_file: phantom.pem }] }
routes:
  - name: mcp
    match: { path: /mcp }
    auth: [jwt, oauth2]
    scopes: [mcp:read]
    mcp:
      tools: { "delete_*": [mcp:admin], "write_*": [mcp:write], "get_weather": [] }
      unlisted_tools: route_scopes
      max_body_bytes: 2048
  - name: mcp-strict
    match: { path: /strict/mcp }
    auth: [jwt]
    mcp: { tools: { "get_*": [] }, unlisted_tools: deny }
  - name: admin
    match: { path_prefix: /admin }
    auth: [jwt]
    scopes: [admin]
    step_up: { acr_values: [${MFA}], max_age_seconds: 300, clock_skew_seconds: 5 }
  - name: stepped-opaque
    match: { path_prefix: /stepped }
    auth: [oauth2]
    step_up: { acr_values: [${MFA}], max_age_seconds: 300, clock_skew_seconds: 5 }
  - name: api
    match: { path_prefix: /v1 }
    auth: [jwt]
  - name: tools
    match: { path: /tools }
    auth: [oauth2]
    mcp: {}
protected_resources:
  - resource: ${MCP}
    authorization_servers: [${idp.issuer}]
    scopes_supported: [mcp:read, mcp:write, mcp:admin]
    resource_name: Example MCP server
    jwks_uri: https://mcp.example.com/.well-known/jwks.json
    routes: [mcp, mcp-strict]
    signed_metadata: {}
    allow_http: true
  - resource: ${ADMIN}
    authorization_servers: [${idp.issuer}]
    routes: [admin]
    allow_http: true
  - resource: ${ROOT}
    authorization_servers: [${idp.issuer}]
    routes: [api]
    allow_http: true
  - resource: ${TOOLS}
    authorization_servers: [${idp.issuer}]
    routes: [tools]
    allow_http: true
`,
    { dir },
  );
  await waitFor(async () => (await fetch(`${svc.httpBase}/readyz`)).ok, 10000);
}, 60000);
afterAll(async () => {
  await svc?.stop();
  await idp?.close();
});

async function jwt(scope: string, resource: string, claims?: Record<string, unknown>): Promise<string> {
  extraClaims = claims;
  try {
    return (await idp.clientCredentials({ scope, resource })).access_token;
  } finally {
    extraClaims = undefined;
  }
}

async function opaque(scope: string, claims?: Record<string, unknown>): Promise<string> {
  extraClaims = claims;
  try {
    return (await idp.clientCredentials({ scope })).access_token;
  } finally {
    extraClaims = undefined;
  }
}

interface BodyInit extends EnvoyRequestInit {
  body?: string;
  rawBody?: Buffer;
}

/** A CheckRequest as Envoy sends it with with_request_body: the body, and its partial-body marker. */
async function check(init: BodyInit) {
  const hasBody = init.body !== undefined || init.rawBody !== undefined;
  const headers: Record<string, string> = {
    ...(hasBody ? { 'x-envoy-auth-partial-body': 'false' } : {}),
    ...(init.headers as Record<string, string> | undefined),
  };
  const req = envoyCheckRequest({ host: 'mcp.example.com', ...init, headers });
  const http = req.attributes.request.http;
  if (init.body !== undefined) http.body = init.body;
  if (init.rawBody !== undefined) http.raw_body = init.rawBody;
  const response = await svc.checkRaw(req);
  return { ...applyEnvoy(req, response), response };
}

const rpc = (method: string, params?: Record<string, unknown>, id: number | undefined = 1) =>
  JSON.stringify({ jsonrpc: '2.0', ...(id === undefined ? {} : { id }), method, ...(params ? { params } : {}) });

const bearer = (t: string) => ({ authorization: `Bearer ${t}`, 'content-type': 'application/json' });

/** A member of the dynamic metadata Envoy receives. */
function meta(
  out: { response: { dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> } } },
  k: string,
) {
  return out.response.dynamic_metadata?.fields?.[k]?.stringValue;
}

function challenge(out: Awaited<ReturnType<typeof check>>) {
  const h = out.clientHeaders['www-authenticate'];
  expect(h, 'a WWW-Authenticate challenge').toBeDefined();
  const cs = parseChallenges(h);
  expect(cs).toHaveLength(1);
  expect(cs[0].scheme).toBe('Bearer');
  return Object.fromEntries(cs[0].params);
}

function get(path: string, host = 'mcp.example.com', method = 'GET') {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
    (resolve, reject) => {
      const u = new URL(svc.httpBase);
      const r = request({ host: u.hostname, port: u.port, path, method, headers: { host } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      r.on('error', reject);
      r.end();
    },
  );
}

describe('protected resource metadata (RFC 9728) on the ops listener', () => {
  it('serves the path-suffixed document of https://mcp.example.com/mcp, signed with the phantom-token key', async () => {
    const res = await get('/.well-known/oauth-protected-resource/mcp');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
    const doc = JSON.parse(res.body) as Record<string, unknown>;
    expect(doc).toMatchObject({
      resource: MCP,
      authorization_servers: [idp.issuer],
      scopes_supported: ['mcp:read', 'mcp:write', 'mcp:admin'],
      bearer_methods_supported: ['header'],
      resource_name: 'Example MCP server',
    });
    const jwks = (await (await fetch(`${svc.httpBase}/.well-known/jwks.json`)).json()) as { keys: never[] };
    const signed = doc.signed_metadata as string;
    expect(decodeProtectedHeader(signed)).toMatchObject({ kid: 'meta-1', alg: 'ES256', typ: 'JWT' });
    const { payload } = await jwtVerify(signed, createLocalJWKSet(jwks), { issuer: MCP });
    expect(payload).toMatchObject({ resource: MCP, authorization_servers: [idp.issuer] });
  });

  it('serves the root document of https://mcp.example.com at the bare well-known path', async () => {
    const res = await get('/.well-known/oauth-protected-resource');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body) as Record<string, unknown>;
    expect(doc.resource).toBe(ROOT);
    expect(doc.signed_metadata).toBeUndefined();
    expect(JSON.parse((await get('/.well-known/oauth-protected-resource/admin')).body).resource).toBe(ADMIN);
  });

  it('HEAD has no body, POST is 405, dot segments and unknown suffixes are no document', async () => {
    const head = await get('/.well-known/oauth-protected-resource/mcp', 'mcp.example.com', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await get('/.well-known/oauth-protected-resource/mcp', 'mcp.example.com', 'POST')).status).toBe(405);
    expect((await get('/.well-known/oauth-protected-resource/x/../mcp')).status).toBe(404);
    expect((await get('/.well-known/oauth-protected-resource/nope')).status).toBe(404);
  });
});

describe('challenges name the metadata (RFC 9728 §5.1)', () => {
  it('no token: 401 with realm and resource_metadata', async () => {
    const out = await check({ method: 'POST', path: '/mcp', body: rpc('tools/list') });
    expect(out.status).toBe(401);
    expect(challenge(out)).toEqual({ realm: 'mcp.example.com', scope: 'mcp:read', resource_metadata: MCP_META });
  });

  it('an invalid token: 401 invalid_token with resource_metadata', async () => {
    const out = await check({ method: 'POST', path: '/mcp', headers: bearer('not-a-token'), body: rpc('tools/list') });
    expect(out.status).toBe(401);
    expect(challenge(out)).toMatchObject({ error: 'invalid_token', resource_metadata: MCP_META });
  });

  it('missing route scope: 403 insufficient_scope naming every scope needed, and the metadata', async () => {
    const t = await jwt('mcp:write', MCP);
    const out = await check({ method: 'POST', path: '/mcp', headers: bearer(t), body: rpc('tools/list') });
    expect(out.status).toBe(403);
    expect(challenge(out)).toEqual({
      realm: 'mcp.example.com',
      error: 'insufficient_scope',
      scope: 'mcp:read',
      resource_metadata: MCP_META,
    });
  });

  it('a 403 without a challenge of its own (tool not listed) gets a Bearer one with the metadata', async () => {
    const t = await jwt('mcp:read', MCP);
    const out = await check({
      method: 'POST',
      path: '/strict/mcp',
      headers: bearer(t),
      body: rpc('tools/call', { name: 'drop_tables' }),
    });
    expect(out.status).toBe(403);
    expect(meta(out, 'reason')).toBe('mcp_tool_not_listed');
    expect(challenge(out)).toEqual({ realm: 'mcp.example.com', resource_metadata: MCP_META });
  });

  it('a route outside every resource keeps its plain challenge; a 400 gets none', async () => {
    const out = await check({ path: '/stepped/x' });
    expect(out.status).toBe(401);
    expect(challenge(out)).toEqual({ realm: 'mcp.example.com' });
    const t = await jwt('mcp:read', MCP);
    const bad = await check({ method: 'POST', path: '/mcp', headers: bearer(t), body: '{' });
    expect(bad.status).toBe(400);
    expect(challenge(bad)).toEqual({ realm: 'mcp.example.com', error: 'invalid_request' });
  });
});

describe('the audience is the resource (RFC 8707)', () => {
  it('a token for the MCP resource is allowed on its route', async () => {
    const out = await check({
      method: 'POST',
      path: '/mcp',
      headers: bearer(await jwt('mcp:read', MCP)),
      body: rpc('tools/list'),
    });
    expect(out.allowed).toBe(true);
  });

  it('a token for the whole API, or for another resource, is 401 invalid_token', async () => {
    for (const aud of [ROOT, OTHER]) {
      const out = await check({
        method: 'POST',
        path: '/mcp',
        headers: bearer(await jwt('mcp:read', aud)),
        body: rpc('tools/list'),
      });
      expect(out.status, aud).toBe(401);
      expect(meta(out, 'reason')).toBe('resource_audience_mismatch');
      expect(challenge(out)).toEqual({ realm: 'mcp.example.com', error: 'invalid_token', resource_metadata: MCP_META });
    }
  });

  it('the root resource takes its own tokens and not the MCP resource`s', async () => {
    expect((await check({ path: '/v1/things', headers: bearer(await jwt('mcp:read', ROOT)) })).allowed).toBe(true);
    const out = await check({ path: '/v1/things', headers: bearer(await jwt('mcp:read', MCP)) });
    expect(out.status).toBe(401);
    expect(challenge(out).resource_metadata).toBe('https://mcp.example.com/.well-known/oauth-protected-resource');
  });

  it('an opaque token whose introspection answer has no aud is refused on the resource route', async () => {
    const out = await check({
      method: 'POST',
      path: '/mcp',
      headers: bearer(await opaque('mcp:read')),
      body: rpc('tools/list'),
    });
    expect(out.status).toBe(401);
    expect(meta(out, 'reason')).toBe('resource_audience_mismatch');
  });
});

describe('MCP per-tool scopes from the JSON-RPC body', () => {
  it('tools/list and notifications need only the route scope; the token is never forwarded', async () => {
    const t = await jwt('mcp:read', MCP);
    for (const body of [rpc('tools/list'), rpc('notifications/initialized', undefined, undefined)]) {
      const out = await check({ method: 'POST', path: '/mcp', headers: bearer(t), body });
      expect(out.allowed, body).toBe(true);
      // forward_credentials: true in this config, and still no passthrough on an MCP route.
      expect(out.upstreamHeaders.authorization).toBeUndefined();
    }
  });

  it('tools/call needs the tool`s scopes; insufficient_scope lists all of them in one challenge', async () => {
    const read = await jwt('mcp:read', MCP);
    const call = (name: string, t: string) =>
      check({
        method: 'POST',
        path: '/mcp',
        headers: bearer(t),
        body: rpc('tools/call', { name, arguments: { a: 1 } }),
      });
    expect((await call('get_weather', read)).allowed).toBe(true);
    expect((await call('unlisted_tool', read)).allowed).toBe(true);
    const denied = await call('delete_repo', read);
    expect(denied.status).toBe(403);
    expect(challenge(denied)).toEqual({
      realm: 'mcp.example.com',
      error: 'insufficient_scope',
      scope: 'mcp:read mcp:admin',
      resource_metadata: MCP_META,
    });
    expect(meta(denied, 'mcp_tool')).toBe('delete_repo');
    // Case folded: Delete_Repo is delete_* too.
    expect((await call('Delete_Repo', read)).status).toBe(403);
    const admin = await jwt('mcp:read mcp:admin', MCP);
    const ok = await call('delete_repo', admin);
    expect(ok.allowed).toBe(true);
    expect(ok.response.dynamic_metadata?.fields).toMatchObject({
      mcp_tool: { stringValue: 'delete_repo' },
      route: { stringValue: 'mcp' },
    });
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(
      /portcullis_mcp_tool_calls_total\{route="mcp",tool="delete_\*",decision="allow",reason="allowed"\} [1-9]/,
    );
    expect(metrics).not.toMatch(/tool="delete_repo"/);
    expect(svc.logs.some((l) => l.includes('"mcp_tool":"delete_repo"'))).toBe(true);
  });

  it('a tool name carrying a credential is never logged or put in the metadata', async () => {
    const t = await jwt('mcp:read', MCP);
    const o = (await idp.clientCredentials({ scope: 'mcp:read', resource: TOOLS })).access_token;
    const cases: Array<[string, string, string, string]> = [
      ['/mcp', t, t.slice(0, 200), t.slice(10, 60)],
      ['/mcp', t, 'eyJhbGciOi.fake', 'eyJhbGciOi'],
      ['/tools', o, `x-${o}`, o],
    ];
    for (const [path, token, name, secret] of cases) {
      const before = svc.logs.length;
      const out = await check({ method: 'POST', path, headers: bearer(token), body: rpc('tools/call', { name }) });
      expect(out.allowed, name).toBe(true);
      expect(meta(out, 'mcp_tool')).toBe('[redacted]');
      const logs = svc.logs.slice(before).join('\n');
      expect(logs).toContain('"mcp_tool":"[redacted]"');
      expect(logs).not.toContain(secret);
    }
  });

  it('raw_body (pack_as_bytes) is read the same way', async () => {
    const read = await jwt('mcp:read', MCP);
    const out = await check({
      method: 'POST',
      path: '/mcp',
      headers: bearer(read),
      rawBody: Buffer.from(rpc('tools/call', { name: 'write_file' })),
    });
    expect(out.status).toBe(403);
    expect(challenge(out).scope).toBe('mcp:read mcp:write');
  });

  it('an opaque token gets through as a phantom token, never as itself', async () => {
    // An opaque token issued for the resource (RFC 8707): introspection answers aud TOOLS.
    const t = (await idp.clientCredentials({ scope: 'mcp:read', resource: TOOLS })).access_token;
    const out = await check({ method: 'POST', path: '/tools', headers: bearer(t), body: rpc('tools/list') });
    expect(out.allowed).toBe(true);
    expect(out.upstreamHeaders.authorization).toMatch(/^Bearer ey/);
    expect(out.upstreamHeaders.authorization).not.toContain(t);
  });

  const hostile: Array<[string, BodyInit, string, number]> = [
    ['malformed JSON', { body: '{"jsonrpc":"2.0",' }, 'mcp_body_not_json', 400],
    ['a batch', { body: `[${rpc('tools/list')}]` }, 'mcp_batch_not_supported', 400],
    ['no body', {}, 'mcp_body_missing', 400],
    [
      'truncated by Envoy (x-envoy-auth-partial-body: true)',
      {
        body: rpc('tools/call', { name: 'get_weather' }).slice(0, 20),
        headers: { 'x-envoy-auth-partial-body': 'true' },
      },
      'mcp_body_truncated',
      400,
    ],
    [
      'shorter than its Content-Length',
      { body: rpc('tools/list'), headers: { 'content-length': '999' } },
      'mcp_body_truncated',
      400,
    ],
    [
      'oversized',
      { body: rpc('tools/call', { name: 'get_weather', arguments: { x: 'y'.repeat(3000) } }) },
      'mcp_body_too_large',
      400,
    ],
    [
      'a tool name twice (parsers disagree on which wins)',
      { body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","name":"delete_repo"}}' },
      'mcp_duplicate_member',
      400,
    ],
    ['raw_body not UTF-8', { rawBody: Buffer.from([0x7b, 0xff, 0x7d]) }, 'mcp_body_not_utf8', 400],
    [
      'body and raw_body both',
      { body: rpc('tools/list'), rawBody: Buffer.from(rpc('tools/list')) },
      'mcp_body_ambiguous',
      400,
    ],
    [
      'Mcp-Name header says another tool',
      {
        body: rpc('tools/call', { name: 'delete_repo' }),
        headers: { 'mcp-method': 'tools/call', 'mcp-name': 'get_weather' },
      },
      'mcp_header_mismatch',
      400,
    ],
    ['declared body Envoy did not send', { headers: { 'content-length': '42' } }, 'mcp_body_not_buffered', 503],
  ];
  for (const [what, init, reason, status] of hostile) {
    it(`${what}: ${status} ${reason}, never an allow`, async () => {
      const t = await jwt('mcp:read mcp:write mcp:admin', MCP);
      const out = await check({
        method: 'POST',
        path: '/mcp',
        ...init,
        headers: { ...bearer(t), ...(init.headers as Record<string, string> | undefined) },
      });
      expect(out.allowed).toBe(false);
      expect(out.status).toBe(status);
      expect(meta(out, 'reason')).toBe(reason);
      expect(out.body).not.toContain(t);
      expect(JSON.stringify(out.clientHeaders)).not.toContain(t.slice(10, 60));
      if (status === 400) expect(challenge(out)).toEqual({ realm: 'mcp.example.com', error: 'invalid_request' });
      else expect(out.clientHeaders['www-authenticate']).toBeUndefined();
    });
  }

  it('GET (the SSE stream) needs no body and only the route scope', async () => {
    const out = await check({ path: '/mcp', headers: bearer(await jwt('mcp:read', MCP)) });
    expect(out.allowed).toBe(true);
  });
});

describe('step-up (RFC 9470)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, Record<string, unknown> | undefined, string | undefined]> = [
    ['acr and auth_time missing', undefined, 'step_up_acr_missing'],
    ['acr wrong', { acr: 'urn:example:pwd', auth_time: 0 }, 'step_up_acr_not_accepted'],
    ['auth_time missing', { acr: MFA }, 'step_up_auth_time_missing'],
    ['auth_time stale', { acr: MFA, auth_time: -400 }, 'step_up_auth_time_too_old'],
    ['auth_time a string', { acr: MFA, auth_time: 'yesterday' }, 'step_up_auth_time_invalid'],
    ['right', { acr: MFA, auth_time: -10 }, undefined],
  ];
  const claims = (c: Record<string, unknown> | undefined) =>
    c && { ...c, ...(typeof c.auth_time === 'number' ? { auth_time: now() + c.auth_time } : {}) };

  for (const [what, c, reason] of cases) {
    it(`JWT claims, ${what}`, async () => {
      const t = await jwt('admin', ADMIN, claims(c));
      const out = await check({ path: '/admin/users', headers: bearer(t) });
      if (!reason) return expect(out.allowed).toBe(true);
      expect(out.status).toBe(401);
      expect(meta(out, 'reason')).toBe(reason);
      expect(challenge(out)).toEqual({
        realm: 'mcp.example.com',
        error: 'insufficient_user_authentication',
        acr_values: MFA,
        max_age: '300',
        resource_metadata: ADMIN_META,
      });
    });

    it(`introspection members, ${what}`, async () => {
      const t = await opaque('mcp:read', claims(c));
      const out = await check({ path: '/stepped/x', headers: bearer(t) });
      if (!reason) return expect(out.allowed).toBe(true);
      expect(out.status).toBe(401);
      expect(meta(out, 'reason')).toBe(reason);
      expect(challenge(out)).toEqual({
        realm: 'mcp.example.com',
        error: 'insufficient_user_authentication',
        acr_values: MFA,
        max_age: '300',
      });
    });
  }

  it('auth_time in the future is an invalid token, not a step-up', async () => {
    const t = await jwt('admin', ADMIN, { acr: MFA, auth_time: now() + 3600 });
    const out = await check({ path: '/admin/users', headers: bearer(t) });
    expect(out.status).toBe(401);
    expect(meta(out, 'reason')).toBe('step_up_auth_time_in_future');
    expect(challenge(out).error).toBe('invalid_token');
  });
});
