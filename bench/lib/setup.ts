// Everything a run needs on disk: API keys, the token issuer's JWKS, the Portcullis config.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { AUDIENCE, ISSUER, generateSigningKey, jwks, type SigningKey } from './tokens.ts';

export interface Workspace {
  dir: string;
  configFile: string;
  grpcPort: number;
  httpPort: number;
  apiKey: string;
  limitedApiKey: string;
  rs256: SigningKey;
  es256: SigningKey;
}

export interface IntrospectionTarget {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  issuer: string;
}

export function newWorkdir(): string {
  return mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
}

export async function prepareWorkspace(
  dir: string,
  ports: { grpc: number; http: number },
  introspection?: IntrospectionTarget,
): Promise<Workspace> {
  const keysFile = join(dir, 'keys.yaml');
  writeFileSync(keysFile, 'keys: []\n');
  const store = new FileKeyStore(keysFile);
  await store.start();
  const { key: apiKey } = await createKey(store, 'pcl', { clientId: 'bench-client', scopes: ['orders:read'] });
  const { key: limitedApiKey } = await createKey(store, 'pcl', { clientId: 'bench-limited', scopes: ['orders:read'] });
  await store.close();

  const rs256 = generateSigningKey('RS256');
  const es256 = generateSigningKey('ES256');
  writeFileSync(join(dir, 'jwks.json'), jwks([rs256, es256]));

  const configFile = join(dir, 'portcullis.yaml');
  writeFileSync(configFile, configYaml(ports, introspection));
  return { dir, configFile, grpcPort: ports.grpc, httpPort: ports.http, apiKey, limitedApiKey, rs256, es256 };
}

/** One config serving every scenario; the route and credential pick the path through decide(). */
function configYaml(ports: { grpc: number; http: number }, intro?: IntrospectionTarget): string {
  return `# Written by bench/run.ts
server:
  grpc: { address: "127.0.0.1:${ports.grpc}" }
  http: { address: "127.0.0.1:${ports.http}" }
realm: api.example.com
logging: { level: info }
credentials:
  api_key:
    headers: [x-api-key]
    store: { type: file, path: keys.yaml }
  jwt:
    - issuer: ${ISSUER}
      audiences: [${AUDIENCE}]
      jwks_file: jwks.json
      algorithms: [RS256, ES256]
${
  intro
    ? `  introspection:
    endpoint: ${intro.endpoint}
    allow_http: true
    client_id: ${intro.clientId}
    client_secret: ${intro.clientSecret}
    audiences: [${AUDIENCE}]
    issuer: ${intro.issuer}
`
    : ''
}rate_limits:
  - { name: bench-tight, key: client_id, limit: 1, window_seconds: 3600 }
routes:
  - name: orders-read
    match: { methods: [GET], path_prefix: /v1/orders }
    auth: [api-key, jwt${intro ? ', oauth2' : ''}]
    scopes: [orders:read]
  - name: limited
    match: { path_prefix: /v1/limited }
    auth: [api-key]
    rate_limit: bench-tight
  # jwt-policy against jwt-policy-baseline: the same route with and without its template and two
  # conditions (docs/policy.md). The baseline is matched first, so the policy route also pays one
  # route's mismatch: the difference is at most the cost of the policy, never less.
  - name: tenant-plain
    match: { methods: [GET], path_prefix: /v1/plain }
    auth: [jwt]
    scopes: [orders:read]
  - name: tenant-orders
    match: { methods: [GET], path_template: "/v1/tenants/{tenant}/orders/{id}" }
    auth: [jwt]
    scopes: [orders:read]
    when:
      - { name: own-tenant, expr: "request.params.tenant == identity.claims.tenant" }
      - { name: admin-writes, expr: "request.method in ['GET', 'HEAD'] || 'admin' in identity.claims.roles" }
default: deny
`;
}
