// The world the identity-provider faults run in: the real oidc-provider, fault fronts before its
// JWKS and introspection endpoints, API keys in a file store, and a portcullis child process.
// Probes cover every credential kind, allowed and denied, with the decision each must get.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, decodeProtectedHeader, generateKeyPair } from 'jose';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import {
  ALLOW,
  DENY,
  checkTarget,
  fixedProbe,
  freshTokenProbe,
  spawnPortcullis,
  startFaultyHttpFront,
  type CheckTarget,
  type FaultyHttpFront,
  type PortcullisChild,
  type Probe,
} from '../support/faults.ts';
import { DEFAULT_RESOURCE, INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { tempDir } from '../support/service.ts';

export const CLIENT = 'test-client';

export interface IdpWorld {
  dir: string;
  idp: TestIdp;
  jwksFront: FaultyHttpFront;
  introspectionFront: FaultyHttpFront;
  portcullis: PortcullisChild;
  target: CheckTarget;
  apiKey: string;
  close(): Promise<void>;
}

export function idpWorldConfig(
  idp: TestIdp,
  jwksFront: FaultyHttpFront,
  introspectionFront: FaultyHttpFront,
  extra = '',
): string {
  return `
server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
  shutdown_grace_seconds: 10
logging: { level: info }
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
  jwt:
    - issuer: ${idp.issuer}
      audiences: [${DEFAULT_RESOURCE}]
      jwks_uri: ${jwksFront.base}/jwks
      allow_http: true
      algorithms: [RS256]
      jwks_cooldown_seconds: 1
      jwks_refresh_seconds: 2
      fetch_timeout_ms: 500
  introspection:
    endpoint: ${introspectionFront.base}/token/introspection
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    timeout_ms: 1200 # a loaded 2-core CI machine; Envoy's 200 ms is the production budget
    max_per_second: 2000
    max_concurrency: 256
    cache: { max_ttl_seconds: 60, negative_ttl_seconds: 2 }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [jwt, oauth2, api-key], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [jwt, oauth2, api-key], scopes: [orders:write] }
${extra}`;
}

export async function startIdpWorld(): Promise<IdpWorld> {
  const dir = tempDir('portcullis-faults-');
  const idp = await startIdp({ opaqueTtl: 600 });
  const jwksFront = await startFaultyHttpFront(idp.issuer, { paths: /^\/jwks/ });
  const introspectionFront = await startFaultyHttpFront(idp.issuer, { paths: /^\/token\/introspection/ });
  const { key: apiKey } = await createKey(FileKeyStore.init(join(dir, 'keys.yaml')), 'pcl', {
    clientId: 'key-client',
    scopes: ['orders:read'],
  });
  const configFile = join(dir, 'portcullis.yaml');
  writeFileSync(configFile, idpWorldConfig(idp, jwksFront, introspectionFront));
  const portcullis = await spawnPortcullis(configFile, dir);
  const target = checkTarget(portcullis.grpcAddress);
  return {
    dir,
    idp,
    jwksFront,
    introspectionFront,
    portcullis,
    target,
    apiKey,
    async close() {
      target.close();
      if (portcullis.proc.exitCode === null) {
        portcullis.kill('SIGKILL');
        await portcullis.exited;
      }
      await jwksFront.close();
      await introspectionFront.close();
      await idp.close();
    },
  };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** A JWT with the right iss/aud/kid/claims, signed by a key the IdP never had. */
export async function forgedJwt(idp: TestIdp, scope = 'orders:read', key?: CryptoKey): Promise<string> {
  const privateKey = key ?? (await generateKeyPair('RS256')).privateKey;
  const kid = idp.publicJwks().keys[0].kid!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope, client_id: CLIENT, jti: Math.random().toString(36).slice(2) })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
    .setIssuer(idp.issuer)
    .setAudience(DEFAULT_RESOURCE)
    .setSubject(CLIENT)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
}

/** A real token whose payload was edited to grant more scope; the signature is the original. */
export function tamperedJwt(token: string): string {
  const [h, p, s] = token.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  payload.scope = 'orders:read orders:write';
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

export function kidOf(token: string): string | undefined {
  return decodeProtectedHeader(token).kid;
}

export interface IdpProbes {
  probes: Probe[];
  jwtFresh: string[];
  opaqueFresh: string[];
  /** Filled after a key rotation: tokens whose kid the service has not seen. */
  jwtNewKid: string[];
}

/** Pools sized for `seconds` of traffic at one fresh token per `everyMs`. */
export async function idpProbes(w: IdpWorld, seconds: number, everyMs = 200): Promise<IdpProbes> {
  const { idp, apiKey } = w;
  const n = Math.ceil((seconds * 1000) / everyMs) + 10;
  const jwt = await idp.jwtAccessToken('orders:read');
  const opaque = await idp.opaqueAccessToken('orders:read');
  const revoked = await idp.opaqueAccessToken('orders:read');
  if ((await idp.revoke(revoked)) !== 200) throw new Error('revocation failed');
  const jwtFresh: string[] = [];
  const opaqueFresh: string[] = [];
  for (let i = 0; i < n; i++) {
    jwtFresh.push(await idp.jwtAccessToken('orders:read'));
    opaqueFresh.push(await idp.opaqueAccessToken('orders:read'));
  }
  const jwtNewKid: string[] = [];
  const probes: Probe[] = [
    fixedProbe('public', { path: '/public/docs' }, { allowed: true, status: 200 }),
    fixedProbe('anonymous', { path: '/v1/orders/7' }, DENY(401)),
    fixedProbe('no-route', { path: '/admin' }, DENY(403)),
    fixedProbe('api-key', { path: '/v1/orders/7', headers: { 'x-api-key': apiKey } }, ALLOW('api-key', 'key-client')),
    fixedProbe('api-key-scope', { method: 'POST', path: '/v1/orders', headers: { 'x-api-key': apiKey } }, DENY(403)),
    fixedProbe('api-key-unknown', { path: '/v1/orders/7', headers: { 'x-api-key': generateApiKey('pcl') } }, DENY(401)),
    fixedProbe('jwt', { path: '/v1/orders/7', headers: bearer(jwt) }, ALLOW('jwt', CLIENT)),
    fixedProbe('jwt-scope', { method: 'POST', path: '/v1/orders', headers: bearer(jwt) }, DENY(403)),
    fixedProbe('jwt-forged', { path: '/v1/orders/7', headers: bearer(await forgedJwt(idp)) }, DENY(401)),
    fixedProbe('jwt-tampered', { method: 'POST', path: '/v1/orders', headers: bearer(tamperedJwt(jwt)) }, DENY(401)),
    freshTokenProbe('jwt-fresh', jwtFresh, everyMs, ALLOW('jwt', CLIENT)),
    freshTokenProbe('jwt-new-kid', jwtNewKid, everyMs, ALLOW('jwt', CLIENT)),
    fixedProbe('opaque', { path: '/v1/orders/7', headers: bearer(opaque) }, ALLOW('oauth2', CLIENT)),
    fixedProbe('opaque-scope', { method: 'POST', path: '/v1/orders', headers: bearer(opaque) }, DENY(403)),
    fixedProbe('opaque-revoked', { path: '/v1/orders/7', headers: bearer(revoked) }, DENY(401)),
    fixedProbe('opaque-bogus', { path: '/v1/orders/7', headers: bearer('bogus-' + 'x'.repeat(37)) }, DENY(401)),
    freshTokenProbe('opaque-fresh', opaqueFresh, everyMs, ALLOW('oauth2', CLIENT)),
  ];
  return { probes, jwtFresh, opaqueFresh, jwtNewKid };
}

/** Everything that needs neither the JWKS endpoint nor introspection (cached keys, cached answers). */
export const NEEDS_NO_IDP = [
  'public',
  'anonymous',
  'no-route',
  'api-key',
  'api-key-scope',
  'api-key-unknown',
  'jwt',
  'jwt-scope',
  'jwt-forged',
  'jwt-tampered',
  'jwt-fresh',
  'opaque',
  'opaque-scope',
];
