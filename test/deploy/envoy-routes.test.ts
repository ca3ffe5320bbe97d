// The Envoy configs and the Portcullis configs shipped with them describe the same routes:
// every `portcullis.route` context extension names a Portcullis route, the route Envoy pins is the
// one Portcullis would match on its own for the same method and path, and every Envoy route with
// ext_authz disabled only serves paths that Portcullis also treats as public.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFile } from '../../src/policy/load.ts';
import { ENVOY_CONFIGS, envoyRoutes, MCP_ENVOY_CONFIG, REPO } from './support/envoy-config.ts';
import { disagreements } from './support/route-agreement.ts';

// Portcullis configs deployed behind these Envoy configs.
const PORTCULLIS_CONFIGS = [
  'examples/portcullis.yaml',
  'deploy/compose/portcullis.yaml',
  'deploy/kubernetes/base/portcullis.yaml',
  'deploy/kubernetes/overlays/sidecar/portcullis.yaml',
]
  .map((f) => `${REPO}${f}`)
  .filter((f) => existsSync(f));

describe('envoy/envoy-mcp.yaml with examples/mcp.yaml', () => {
  it('agree on every route and context extension (the metadata routes go to the ops listener)', () => {
    const envoy = parse(readFileSync(MCP_ENVOY_CONFIG, 'utf8'));
    const { config } = loadConfigFile(`${REPO}examples/mcp.yaml`);
    // Checked in envoy-config.test.ts: exact paths to the ops listener, never to the MCP server.
    const routes = envoyRoutes(envoy).filter((r) => !r.value.startsWith('/.well-known/oauth-protected-resource'));
    expect(disagreements(routes, config)).toEqual([]);
    expect(routes.filter((r) => r.contextExtensions['portcullis.route']).map((r) => r.name)).toEqual([
      'mcp',
      'mcp-admin',
    ]);
  });
});

describe.each(
  ENVOY_CONFIGS.flatMap((e) => PORTCULLIS_CONFIGS.map((p) => [e.slice(REPO.length), p.slice(REPO.length)])),
)('%s with %s', (envoyFile, portcullisFile) => {
  const envoy = parse(readFileSync(`${REPO}${envoyFile}`, 'utf8'));
  const { config } = loadConfigFile(`${REPO}${portcullisFile}`, {
    ...process.env,
    INTROSPECTION_CLIENT_SECRET: 'x',
    PORTCULLIS_DEV_INTROSPECTION_SECRET: 'x',
  });

  it('agree on every route, context extension and public path', () => {
    const routes = envoyRoutes(envoy);
    expect(disagreements(routes, config)).toEqual([]);
    // Not vacuous: the config pins routes and has a public one.
    expect(routes.filter((r) => r.contextExtensions['portcullis.route']).length).toBeGreaterThanOrEqual(3);
    expect(routes.some((r) => r.disabled)).toBe(true);
  });
});

describe('the agreement check finds real mistakes', () => {
  const envoy = parse(readFileSync(ENVOY_CONFIGS[0], 'utf8'));
  const { config } = loadConfigFile(`${REPO}examples/portcullis.yaml`);

  it('a context extension naming a route that does not exist', () => {
    const routes = envoyRoutes(envoy).map((r) =>
      r.name === 'reports' ? { ...r, contextExtensions: { 'portcullis.route': 'report' } } : r,
    );
    expect(disagreements(routes, config)).toContain(
      'Envoy route reports: portcullis.route "report" is not a route in the Portcullis config',
    );
  });

  it('ext_authz disabled on a path Portcullis protects', () => {
    const routes = envoyRoutes(envoy).map((r) =>
      r.name === 'reports' ? { ...r, disabled: true, contextExtensions: {} } : r,
    );
    expect(disagreements(routes, config)).toContain(
      'Envoy route reports: ext_authz is disabled but Portcullis treats GET /v1/reports as protected route "reports"',
    );
  });

  it('a pinned route that answers for methods its Portcullis rule does not cover', () => {
    const routes = envoyRoutes(envoy).map((r) => (r.name === 'orders-read' ? { ...r, methods: undefined } : r));
    expect(disagreements(routes, config)).toContain(
      'Envoy route orders-read: pins "orders-read" but Portcullis matches POST /v1/orders to "orders-write"',
    );
  });

  it('an unknown context extension key', () => {
    const routes = envoyRoutes(envoy).map((r) =>
      r.name === 'reports' ? { ...r, contextExtensions: { route: 'reports' } } : r,
    );
    expect(disagreements(routes, config)).toContain('Envoy route reports: unknown context extension "route"');
  });
});
