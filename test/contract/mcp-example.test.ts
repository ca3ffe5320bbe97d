// examples/mcp.yaml and docs/mcp.md's walkthrough: the shipped config, with the identity provider
// of `npm run demo:idp` (the same oidc-provider, here on a free port), answers what the walkthrough
// says: the metadata document, tools/list allowed, a tool needing more scopes refused with every
// scope named, a token for another resource refused, step-up asked for on the admin endpoint.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { applyEnvoy, envoyCheckRequest } from '../support/envoy.ts';
import { DEFAULT_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';

const RESOURCE = 'https://mcp.example.com/mcp';
const META = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
let idp: TestIdp;
let svc: TestService;
let config: string;

beforeAll(async () => {
  idp = await startIdp({
    resources: {
      [RESOURCE]: { scope: 'mcp:use files:delete mcp:admin', format: 'jwt' },
      'https://api.example.com': { scope: 'mcp:use files:delete mcp:admin', format: 'jwt' },
    },
  });
  // The example's one machine-specific value: where the demo identity provider listens.
  config = readFileSync('examples/mcp.yaml', 'utf8')
    .replaceAll('http://127.0.0.1:9400', idp.issuer)
    .replace('"0.0.0.0:9191"', '"127.0.0.1:0"')
    .replace('"0.0.0.0:9192"', '"127.0.0.1:0"');
  expect(config).not.toContain('9400');
  svc = await startService(config);
  await waitFor(async () => (await fetch(`${svc.httpBase}/readyz`)).ok, 10000);
}, 60000);
afterAll(async () => {
  await svc?.stop();
  await idp?.close();
});

const token = async (scope: string, resource = RESOURCE) =>
  (await idp.clientCredentials({ scope, resource, client: DEFAULT_CLIENT })).access_token;

async function post(path: string, t: string, body: string) {
  const req = envoyCheckRequest({
    method: 'POST',
    path,
    host: 'mcp.example.com',
    headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'false' },
  });
  req.attributes.request.http.raw_body = Buffer.from(body);
  const response = await svc.checkRaw(req);
  return applyEnvoy(req, response);
}

const call = (name: string) =>
  JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: {} } });
const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });

describe('examples/mcp.yaml (docs/mcp.md walkthrough)', () => {
  it('publishes the metadata document', async () => {
    const doc = (await (await fetch(`${svc.httpBase}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<
      string,
      unknown
    >;
    expect(doc).toEqual({
      resource: RESOURCE,
      authorization_servers: [idp.issuer],
      scopes_supported: ['mcp:use', 'files:delete', 'mcp:admin'],
      bearer_methods_supported: ['header'],
      resource_name: 'Example MCP server',
    });
  });

  it('mcp:use lists tools and calls ordinary ones; delete_* needs files:delete, named in the challenge', async () => {
    const t = await token('mcp:use');
    expect((await post('/mcp', t, list)).allowed).toBe(true);
    expect((await post('/mcp', t, call('search'))).allowed).toBe(true);
    const denied = await post('/mcp', t, call('delete_file'));
    expect(denied.status).toBe(403);
    expect(denied.clientHeaders['www-authenticate']).toBe(
      `Bearer realm="mcp.example.com", error="insufficient_scope", scope="mcp:use files:delete", resource_metadata="${META}"`,
    );
    expect((await post('/mcp', await token('mcp:use files:delete'), call('delete_file'))).allowed).toBe(true);
  });

  it('a token for another resource is 401 invalid_token', async () => {
    const out = await post('/mcp', await token('mcp:use', 'https://api.example.com'), list);
    expect(out.status).toBe(401);
    expect(out.clientHeaders['www-authenticate']).toBe(
      `Bearer realm="mcp.example.com", error="invalid_token", resource_metadata="${META}"`,
    );
  });

  it('the admin endpoint asks for a step-up (client-credentials tokens carry no acr)', async () => {
    const out = await post('/admin/mcp', await token('mcp:use mcp:admin'), call('admin_reset'));
    expect(out.status).toBe(401);
    expect(out.clientHeaders['www-authenticate']).toBe(
      `Bearer realm="mcp.example.com", error="insufficient_user_authentication", acr_values="urn:example:mfa", max_age="900", resource_metadata="${META}"`,
    );
  });

  it('a reload serves the new document; a broken one keeps the old', async () => {
    const url = `${svc.httpBase}/.well-known/oauth-protected-resource/mcp`;
    const name = async () => ((await (await fetch(url)).json()) as { resource_name?: string }).resource_name;
    writeFileSync(svc.configFile, config.replace('Example MCP server', 'Renamed MCP server'));
    await waitFor(async () => (await name()) === 'Renamed MCP server', 10000);
    writeFileSync(svc.configFile, config.replace('routes: [mcp, mcp-admin]', 'routes: [mcp, nope]'));
    await waitFor(() => svc.logs.some((l) => l.includes('no route named \\"nope\\"')), 10000);
    expect(await name()).toBe('Renamed MCP server');
    writeFileSync(svc.configFile, config);
    await waitFor(async () => (await name()) === 'Example MCP server', 10000);
  });

  it('`portcullis check --data` gives the same decision', async () => {
    const file = join(svc.dir, 'check.yaml');
    writeFileSync(file, config);
    const t = await token('mcp:use');
    const r = await runCli([
      'check',
      '--config',
      file,
      '-X',
      'POST',
      '-p',
      '/mcp',
      '--host',
      'mcp.example.com',
      '-H',
      `authorization: Bearer ${t}`,
      '-d',
      call('delete_file'),
    ]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ status: 403, reason: 'scope_missing', mcp_tool: 'delete_file' });
    expect(r.stdout).not.toContain(t);
  });
});
