// decide() on the routes of a protected resource, an MCP route and a step-up route, row by row with
// in-memory verifiers (src/core/protected-resource.ts, src/resources/guards.ts): the order of the
// checks, what each deny carries, and the routes that have none of it left as they were.
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import { guardedDeny, noPassthrough } from '../../src/core/protected-resource.ts';
import { deny } from '../../src/core/decision.ts';
import { newIdentity } from '../../src/core/identity.ts';
import type { AuthzRequest, Decision, Identity } from '../../src/core/types.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { decideDeps } from '../support/deps.ts';

const MCP = 'https://mcp.example.com/mcp';
const META = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
const CONFIG = `
realm: r
headers: { forward_credentials: true }
credentials:
  jwt: [{ issuer: https://idp.example.com, audiences: [${MCP}], jwks_file: jwks.json }]
  api_key: { store: { type: memory } }
routes:
  - name: mcp
    match: { path: /mcp }
    auth: [jwt]
    scopes: [mcp:use]
    mcp: { tools: { "delete_*": [files:delete] } }
    step_up: { acr_values: [mfa] }
  - { name: plain, match: { path: /plain }, auth: [jwt], scopes: [mcp:use] }
protected_resources:
  - { resource: ${MCP}, authorization_servers: [https://idp.example.com], routes: [mcp] }
`;
const policy = compilePolicy(parseConfig(CONFIG));
const now = Date.parse('2026-06-01T00:00:00Z');

function identity(scopes: string[], claims: Record<string, unknown>): Identity {
  return newIdentity('jwt', { subject: 'alice', clientId: 'agent', scopes, claims });
}

function run(id: Identity, over: Partial<AuthzRequest> = {}, on = policy): Promise<Decision> {
  const req: AuthzRequest = {
    method: 'POST',
    host: 'mcp.example.com',
    rawPath: '/mcp',
    headers: Object.assign(Object.create(null) as Record<string, string>, {
      authorization: 'Bearer eyJ.token.sig',
      'x-envoy-auth-partial-body': 'false',
    }),
    sourceIp: '10.0.0.1',
    contextExtensions: {},
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_x' } }),
    ...over,
  };
  return decide(req, on, decideDeps({ now: () => now, verifyJwt: async () => id }));
}

const good = { aud: MCP, acr: 'mfa' };
const header = (d: Decision) => d.responseHeaders.find((h) => h.name === 'www-authenticate')?.value;

describe('decide() on a protected MCP route with step-up', () => {
  it('checks the audience first, then step-up, then the body, then the scopes', async () => {
    const all = ['mcp:use', 'files:delete'];
    expect((await run(identity(all, { aud: 'https://other' }), { body: '{' })).reason).toBe(
      'resource_audience_mismatch',
    );
    expect((await run(identity(all, { aud: MCP }), { body: '{' })).reason).toBe('step_up_acr_missing');
    expect((await run(identity([], good), { body: '{' })).reason).toBe('mcp_body_not_json');
    expect((await run(identity(['mcp:use'], good))).reason).toBe('scope_missing');
    const ok = await run(identity(all, good));
    expect(ok.allowed).toBe(true);
    expect(ok.mcp).toEqual({ method: 'tools/call', tool: 'delete_x', toolPattern: 'delete_*' });
  });

  it('the audience deny names no identity (the token is not for this resource); the others do', async () => {
    const wrongAud = await run(identity(['mcp:use'], { aud: 'https://other' }));
    expect(wrongAud.identity).toBeUndefined();
    expect(header(wrongAud)).toBe(`Bearer realm="r", error="invalid_token", resource_metadata="${META}"`);
    const scope = await run(identity(['mcp:use'], good));
    expect(scope.identity?.subject).toBe('alice');
    expect(scope.mcp?.tool).toBe('delete_x');
    expect(header(scope)).toBe(
      `Bearer realm="r", error="insufficient_scope", scope="mcp:use files:delete", resource_metadata="${META}"`,
    );
    const stepUp = await run(identity(['mcp:use'], { aud: MCP, acr: 'pwd' }));
    expect(stepUp.status).toBe(401);
    expect(header(stepUp)).toBe(
      `Bearer realm="r", error="insufficient_user_authentication", acr_values="mfa", resource_metadata="${META}"`,
    );
  });

  it('removes the client token on the MCP route although forward_credentials is true', async () => {
    const ok = await run(identity(['mcp:use', 'files:delete'], good));
    expect(ok.allowed && ok.remove).toContain('authorization');
  });

  it('a shadowed MCP route removes the client token too, on a would-be deny as on an allow', async () => {
    const shadowPolicy = compilePolicy(
      parseConfig(CONFIG.replace('    step_up: { acr_values: [mfa] }', '    mode: shadow')),
    );
    const shadowRun = (id: Identity) => run(id, {}, shadowPolicy);
    const wouldDeny = await shadowRun(identity(['mcp:use'], { aud: MCP }));
    expect(wouldDeny.allowed && wouldDeny.shadow?.reason).toBe('scope_missing');
    // The tool is still recorded (log, metric, metadata): what a shadow rollout is for.
    expect(wouldDeny.mcp?.tool).toBe('delete_x');
    expect(wouldDeny.allowed && wouldDeny.remove).toContain('authorization');
    const wouldAllow = await shadowRun(identity(['mcp:use', 'files:delete'], { aud: MCP }));
    expect(wouldAllow.allowed && wouldAllow.shadow?.reason).toBe('allowed');
    expect(wouldAllow.allowed && wouldAllow.remove).toContain('authorization');
    expect(wouldAllow.mcp?.toolPattern).toBe('delete_*');
  });

  it('a condition deny on an MCP route names the tool', async () => {
    const withWhen = compilePolicy(
      parseConfig(CONFIG.replace('    step_up: { acr_values: [mfa] }', '    when: ["identity.subject == \'bob\'"]')),
    );
    const d = await run(identity(['mcp:use', 'files:delete'], { aud: MCP }), {}, withWhen);
    expect(d.reason).toBe('condition_failed');
    expect(d.mcp?.tool).toBe('delete_x');
  });

  it('a tool name shaped like a credential is [redacted] in the decision', async () => {
    const id = identity(['mcp:use', 'files:delete'], good);
    const body = (name: string) =>
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: `delete_${name}` } });
    for (const name of ['pcl_0123456789abcdef', 'eyJhbGciOi', 'x_eyJ.token.sig_x']) {
      const d = await run(id, { body: body(name) });
      expect(d.allowed, name).toBe(true);
      expect(d.mcp?.tool).toBe('[redacted]');
      expect(d.mcp?.toolPattern).toBe('delete_*');
    }
    expect((await run(id, { body: body('files') })).mcp?.tool).toBe('delete_files');
  });

  it('a GET needs no body and only the route scopes', async () => {
    const d = await run(identity(['mcp:use'], good), { method: 'GET', body: undefined });
    expect(d.allowed).toBe(true);
    expect(d.mcp).toBeUndefined();
  });

  it('a route with none of it is decided as before: forwarded token, plain challenge, no aud check', async () => {
    const ok = await run(identity(['mcp:use'], {}), { rawPath: '/plain', body: undefined });
    expect(ok.allowed && ok.remove).not.toContain('authorization');
    const denied = await run(identity([], {}), { rawPath: '/plain', body: undefined });
    expect(header(denied)).toBe('Bearer realm="r", error="insufficient_scope", scope="mcp:use"');
  });
});

describe('the core helpers', () => {
  const guards = {
    forRoute: (r: string) =>
      r === 'g'
        ? {
            noPassthrough: false,
            audienceMatches: () => true,
            challenge: (h: string | undefined) => `${h ?? 'Bearer realm="r"'}, x="y"`,
          }
        : undefined,
  };

  it('guardedDeny touches only 401 and 403 of a guarded route, and adds a challenge where there was none', () => {
    const forbidden = guardedDeny(deny('no_route', 'r', { route: 'g' }), guards, 'r');
    expect(header(forbidden)).toBe('Bearer realm="r", x="y"');
    const invalid = guardedDeny(deny('jwt_malformed', 'r', { route: 'g' }), guards, 'r');
    expect(header(invalid)).toBe('Bearer realm="r", error="invalid_token", x="y"');
    expect(invalid.responseHeaders.filter((h) => h.name === 'www-authenticate')).toHaveLength(1);
    const bad = deny('mcp_body_not_json', 'r', { route: 'g' });
    expect(guardedDeny(bad, guards, 'r')).toBe(bad);
    const other = deny('jwt_malformed', 'r', { route: 'h' });
    expect(guardedDeny(other, guards, 'r')).toBe(other);
  });

  it('noPassthrough removes the credential headers present, not one a phantom token sets', () => {
    expect(noPassthrough(['x-user-id'], ['authorization', 'x-api-key'], [])).toEqual([
      'x-user-id',
      'authorization',
      'x-api-key',
    ]);
    expect(noPassthrough([], ['authorization'], [{ name: 'authorization', value: 'Bearer phantom' }])).toEqual([]);
  });
});
