// A real OAuth 2.0 / OIDC identity provider for tests: the `oidc-provider` package (certified),
// listening on an ephemeral 127.0.0.1 port. Never a hand-rolled fake.
//
// It issues, with the client_credentials grant:
//   - RFC 9068 JWT access tokens (typ at+jwt) when a `resource` (resource indicator, RFC 8707)
//     configured with format 'jwt' is requested: `aud` is that resource;
//   - opaque access tokens otherwise (no resource, or a resource configured with format 'opaque');
// and serves discovery, JWKS, token introspection (RFC 7662) and revocation (RFC 7009).
//
// Tests can stop it and start it again on the same port (an outage), rotate its signing keys
// (the new key signs, the old one stays published until dropped), and count requests per path
// (to assert how often JWKS was fetched). Token state lives in a per-harness store that survives
// restarts and key rotations, so an opaque token issued before an outage is still known after it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { restartablePort } from './ports.ts';

export type SigningAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

export interface IdpResource {
  /** Scopes this resource server accepts; requested scopes outside it are dropped from the token. */
  scope: string;
  format?: 'jwt' | 'opaque';
  /** Access token lifetime, seconds (default 300). */
  ttl?: number;
  /** Signing alg for JWT access tokens (default: the provider's first key's alg). */
  alg?: SigningAlg;
}

export interface IdpClient {
  client_id: string;
  client_secret: string;
  /** Scopes the client may request (default: every scope the resources name). */
  scope?: string;
  grant_types?: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
}

export interface IdpOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Algorithm of the initial signing key (default RS256). */
  alg?: SigningAlg;
  /** Resource servers by resource indicator (an absolute URI, used as `aud`). */
  resources?: Record<string, IdpResource>;
  /** Clients; default: DEFAULT_CLIENT and INTROSPECTION_CLIENT. */
  clients?: IdpClient[];
  /** Lifetime of opaque access tokens issued without a resource, seconds (default 300). */
  opaqueTtl?: number;
  /**
   * Claims added to each access token issued from now on (JWT claims; introspection members of an
   * opaque token): oidc-provider's extraTokenClaims. Tests set e.g. `acr` and `auth_time` (step-up).
   */
  extraTokenClaims?: () => Record<string, unknown> | undefined;
}

export const DEFAULT_RESOURCE = 'https://api.example.com';
export const DEFAULT_SCOPES = 'orders:read orders:write orders:read-lite reports:read';
export const DEFAULT_CLIENT: IdpClient = {
  client_id: 'test-client',
  client_secret: 'test-client-secret-0123456789abcdef',
};
/** A confidential client for the gateway's introspection and revocation calls. */
export const INTROSPECTION_CLIENT: IdpClient = {
  client_id: 'gateway',
  client_secret: 'gateway-secret-0123456789abcdef',
};

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

export interface TestIdp {
  /** `http://127.0.0.1:<port>`: the exact `iss` of its tokens. */
  readonly issuer: string;
  readonly port: number;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly revocationEndpoint: string;
  readonly discoveryUrl: string;
  /** client_credentials grant. Pass `resource` for a JWT access token (when that resource is format 'jwt'). */
  clientCredentials(opts?: { scope?: string; resource?: string; client?: IdpClient }): Promise<TokenResponse>;
  /** An RFC 9068 JWT access token for DEFAULT_RESOURCE (or `resource`). */
  jwtAccessToken(scope?: string, resource?: string): Promise<string>;
  /** An opaque access token (no resource indicator). */
  opaqueAccessToken(scope?: string): Promise<string>;
  /** RFC 7662 introspection, as INTROSPECTION_CLIENT (or `client`). */
  introspect(token: string, client?: IdpClient): Promise<Record<string, unknown>>;
  /** RFC 7009 revocation, as the client the token was issued to (default DEFAULT_CLIENT). */
  revoke(token: string, client?: IdpClient): Promise<number>;
  /** Adds a new signing key (it signs from now on); old keys stay in the JWKS. Returns the new kid. */
  rotateKeys(alg?: SigningAlg): Promise<string>;
  /** Removes every key but the newest from the JWKS. */
  dropOldKeys(): Promise<void>;
  /** The currently published JWKS (public keys). */
  publicJwks(): { keys: JWK[] };
  /** Requests received, by URL pathname (e.g. `/jwks`). */
  requests: Map<string, number>;
  requestCount(pathname: string): number;
  /** Delay every response by this many ms (a slow IdP); 0 to stop. */
  setLatency(ms: number): void;
  /** Stops listening and drops open connections (an outage). Token state is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Final shutdown. */
  close(): Promise<void>;
}

/** oidc-provider's adapter interface over a Map owned by one harness (survives restarts/rotation). */
function memoryAdapterFactory() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt?: number }>();
  const live = (key: string) => {
    const e = store.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt < Date.now()) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  };
  return class HarnessAdapter {
    constructor(readonly name: string) {}
    private key(id: string) {
      return `${this.name}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
      if (payload.grantId) {
        const g = `grant:${payload.grantId as string}`;
        const members = (store.get(g)?.payload.members as string[] | undefined) ?? [];
        store.set(g, { payload: { members: [...members, this.key(id)] } });
      }
      if (payload.userCode) store.set(`userCode:${payload.userCode as string}`, { payload: { id } });
      if (payload.uid) store.set(`uid:${payload.uid as string}`, { payload: { id } });
    }
    async find(id: string) {
      return live(this.key(id));
    }
    async findByUserCode(userCode: string) {
      const ref = live(`userCode:${userCode}`);
      return ref ? live(this.key(ref.id as string)) : undefined;
    }
    async findByUid(uid: string) {
      const ref = live(`uid:${uid}`);
      return ref ? live(this.key(ref.id as string)) : undefined;
    }
    async consume(id: string) {
      const p = live(this.key(id));
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      const g = `grant:${grantId}`;
      for (const k of (store.get(g)?.payload.members as string[] | undefined) ?? []) store.delete(k);
      store.delete(g);
    }
  };
}

async function newSigningKey(alg: SigningAlg, n: number): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `test-${alg.toLowerCase()}-${n}-${Math.random().toString(36).slice(2, 8)}`, alg, use: 'sig' };
}

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

export async function startIdp(opts: IdpOptions = {}): Promise<TestIdp> {
  const resources: Record<string, IdpResource> = opts.resources ?? {
    [DEFAULT_RESOURCE]: { scope: DEFAULT_SCOPES, format: 'jwt', ttl: 300 },
  };
  const allScopes =
    [...new Set(Object.values(resources).flatMap((r) => r.scope.split(' ')))].join(' ') || DEFAULT_SCOPES;
  const clients = (opts.clients ?? [DEFAULT_CLIENT, INTROSPECTION_CLIENT]).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: c.grant_types ?? ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: c.scope ?? allScopes,
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
  }));
  const Adapter = memoryAdapterFactory();
  const requests = new Map<string, number>();
  let latencyMs = 0;
  let keyCount = 0;
  let keys: JWK[] = [await newSigningKey(opts.alg ?? 'RS256', ++keyCount)];

  // The port must be known before the provider exists (the issuer URL contains it).
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let server: Server = makeServer();
  function makeServer(): Server {
    const s = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      requests.set(path, (requests.get(path) ?? 0) + 1);
      const go = () => handler!(req, res);
      if (latencyMs > 0) setTimeout(go, latencyMs);
      else go();
    });
    s.keepAliveTimeout = 1000;
    return s;
  }
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  // Outside the ephemeral range, so that the port is still free when start() follows stop().
  // Another process may bind the probed port first: try a few.
  const firstListen = async (): Promise<number> => {
    if (opts.port !== undefined) return listen(opts.port);
    for (let attempt = 0; ; attempt++) {
      try {
        return await listen(await restartablePort());
      } catch (e) {
        if (attempt >= 4 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        server = makeServer();
      }
    }
  };
  const port = await firstListen();
  const issuer = `http://127.0.0.1:${port}`;
  let running = true;

  const build = () => {
    const provider = new Provider(issuer, {
      adapter: Adapter,
      clients,
      jwks: { keys: keys as never },
      scopes: allScopes.split(' '),
      claims: { openid: ['sub'] },
      clientBasedCORS: () => false,
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true, allowedPolicy: async () => true },
        revocation: { enabled: true, allowedPolicy: async () => true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => undefined,
          useGrantedResource: async () => false,
          getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
            const r = resources[indicator];
            if (!r) throw new errors.InvalidTarget();
            return {
              scope: r.scope,
              audience: indicator,
              accessTokenTTL: r.ttl ?? 300,
              accessTokenFormat: r.format ?? 'jwt',
              ...(r.format !== 'opaque' ? { jwt: { sign: { alg: r.alg ?? (keys[0].alg as string) } } } : {}),
            };
          },
        },
      },
      ttl: { ClientCredentials: opts.opaqueTtl ?? 300 },
      extraTokenClaims: async () => opts.extraTokenClaims?.(),
      // Keys for the provider's own cookies: unused by client_credentials, required by the library.
      cookies: { keys: ['test-cookie-key-0123456789'] },
    });
    // Quiet the library's development warnings; tests read their own logs.
    provider.on('server_error', () => {});
    return provider;
  };
  let provider = build();
  handler = provider.callback();

  const rebuild = () => {
    provider = build();
    handler = provider.callback();
  };

  const form = async (url: string, body: Record<string, string>, client: IdpClient) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`,
      },
      body: new URLSearchParams(body),
    });
    return res;
  };

  const idp: TestIdp = {
    issuer,
    port,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint: `${issuer}/token`,
    introspectionEndpoint: `${issuer}/token/introspection`,
    revocationEndpoint: `${issuer}/token/revocation`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    async clientCredentials({ scope, resource, client } = {}) {
      const body: Record<string, string> = { grant_type: 'client_credentials' };
      if (scope !== undefined) body.scope = scope;
      if (resource !== undefined) body.resource = resource;
      const res = await form(idp.tokenEndpoint, body, client ?? DEFAULT_CLIENT);
      const json = (await res.json()) as TokenResponse & { error?: string; error_description?: string };
      if (!res.ok) throw new Error(`token endpoint ${res.status}: ${json.error} ${json.error_description ?? ''}`);
      return json;
    },
    async jwtAccessToken(scope = 'orders:read', resource = DEFAULT_RESOURCE) {
      return (await idp.clientCredentials({ scope, resource })).access_token;
    },
    async opaqueAccessToken(scope = 'orders:read') {
      return (await idp.clientCredentials({ scope })).access_token;
    },
    async introspect(token, client = INTROSPECTION_CLIENT) {
      const res = await form(idp.introspectionEndpoint, { token }, client);
      if (!res.ok) throw new Error(`introspection endpoint ${res.status}`);
      return (await res.json()) as Record<string, unknown>;
    },
    async revoke(token, client = DEFAULT_CLIENT) {
      const res = await form(idp.revocationEndpoint, { token }, client);
      return res.status;
    },
    async rotateKeys(alg) {
      const key = await newSigningKey(alg ?? (keys[0].alg as SigningAlg), ++keyCount);
      keys = [key, ...keys];
      rebuild();
      return key.kid!;
    },
    async dropOldKeys() {
      keys = keys.slice(0, 1);
      rebuild();
    },
    publicJwks() {
      return { keys: keys.map(publicPart) };
    },
    requests,
    requestCount(pathname) {
      return requests.get(pathname) ?? 0;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    get running() {
      return running;
    },
    async stop() {
      if (!running) return;
      running = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    async start() {
      if (running) return;
      server = makeServer();
      await listen(port);
      running = true;
    },
    async close() {
      await idp.stop();
    },
  };
  return idp;
}
