// The measured scenarios: what each sends, what decision it must get, and its target.
import type { Workspace } from './setup.ts';
import { framedCheckRequest, type RequestSpec } from './payloads.ts';
import { dpopClient, dpopFrames } from './dpop.ts';
import { signPool, signToken, type SigningKey } from './tokens.ts';

export type Expectation = { allowed: true } | { allowed: false; status: number };

export interface Scenario {
  id: string;
  title: string;
  /** h2load repeats one payload; 'generator' sends a different pre-built one each request. */
  driver: 'h2load' | 'generator';
  expect: Expectation;
  /** Minimum Checks/s as a fraction of the floor's (same driver, same run). */
  targetRatio?: number;
  /** Why it cannot run here (missing capability); set during preflight. */
  skip?: string;
  /** Requests whose answers are not what this scenario measures (the rate-limited key's first allow). */
  primeRequests?: number;
  spec?: RequestSpec;
  /** Generator scenarios: builds `count` distinct frames. */
  frames?(count: number): Promise<Buffer[]>;
  /** Runs against a Portcullis of its own (bench/lib/dpop.ts), not the main one. */
  server?: 'dpop-memory' | 'dpop-redis';
}

const ORDERS = '/v1/orders/12345?expand=items';

/** The API-key row's request: also the load that keeps Portcullis busy through the A/A pairs. */
export const apiKeySpec = (ws: Workspace): RequestSpec => ({ path: ORDERS, headers: { 'x-api-key': ws.apiKey } });

export function scenarios(ws: Workspace, opaqueToken: string | undefined): Scenario[] {
  const cachedJwt = signToken(ws.rs256, {
    sub: 'user-cached',
    client_id: 'bench-web',
    scope: 'orders:read profile',
    jti: 'cached-1',
  });
  const tenantJwt = signToken(ws.rs256, {
    sub: 'user-tenant',
    client_id: 'bench-web',
    scope: 'orders:read profile',
    jti: 'cached-tenant-1',
    extra: { tenant: 'acme', roles: ['viewer', 'writer'] },
  });
  const fresh = (key: SigningKey, prefix: string) => async (count: number) =>
    (await signPool(key, count, `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`)).map((t, i) =>
      framedCheckRequest({ path: ORDERS, headers: { authorization: `Bearer ${t}` } }, i),
    );
  const dpop = dpopClient(ws.es256);
  const proofs = (count: number) => Promise.resolve(dpopFrames(dpop, ORDERS, count));
  const dpopRsa = dpopClient(ws.es256, 'RS256');
  const rsaProofs = (count: number) => Promise.resolve(dpopFrames(dpopRsa, ORDERS, count));
  return [
    {
      id: 'api-key',
      title: 'API key',
      driver: 'h2load',
      expect: { allowed: true },
      targetRatio: 0.9,
      spec: apiKeySpec(ws),
    },
    {
      id: 'jwt-cached',
      title: 'JWT RS256, cached',
      driver: 'h2load',
      expect: { allowed: true },
      targetRatio: 0.9,
      spec: { path: ORDERS, headers: { authorization: `Bearer ${cachedJwt}` } },
    },
    {
      id: 'jwt-policy',
      title: 'JWT RS256, cached; path template and two conditions',
      driver: 'h2load',
      expect: { allowed: true },
      spec: { path: '/v1/tenants/acme/orders/12345?expand=items', headers: { authorization: `Bearer ${tenantJwt}` } },
    },
    {
      id: 'jwt-policy-baseline',
      title: 'JWT RS256, cached; the same route without them',
      driver: 'h2load',
      expect: { allowed: true },
      spec: { path: '/v1/plain/acme/orders/12345?expand=items', headers: { authorization: `Bearer ${tenantJwt}` } },
    },
    {
      id: 'jwt-rs256-new',
      title: 'JWT RS256, never seen',
      driver: 'generator',
      expect: { allowed: true },
      targetRatio: 0.6,
      frames: fresh(ws.rs256, 'rs'),
    },
    {
      id: 'jwt-es256-new',
      title: 'JWT ES256, never seen',
      driver: 'generator',
      expect: { allowed: true },
      frames: fresh(ws.es256, 'es'),
    },
    {
      id: 'opaque-cached',
      title: 'Opaque token, cached',
      driver: 'h2load',
      expect: { allowed: true },
      spec: opaqueToken ? { path: ORDERS, headers: { authorization: `Bearer ${opaqueToken}` } } : undefined,
      skip: opaqueToken ? undefined : 'no identity provider for introspection (test/support/idp.ts did not start)',
    },
    {
      id: 'deny-no-credential',
      title: 'Deny: no credential',
      driver: 'h2load',
      expect: { allowed: false, status: 401 },
      spec: { path: ORDERS },
    },
    {
      id: 'rate-limited',
      title: 'Rate-limited client (429)',
      driver: 'h2load',
      expect: { allowed: false, status: 429 },
      primeRequests: 1,
      spec: { path: '/v1/limited/export', headers: { 'x-api-key': ws.limitedApiKey } },
    },
    {
      id: 'dpop-memory',
      title: 'DPoP, never-seen proof, cached token (replay cache in memory)',
      driver: 'generator',
      expect: { allowed: true },
      targetRatio: 0.5,
      frames: proofs,
      server: 'dpop-memory',
    },
    {
      id: 'dpop-baseline',
      title: 'Baseline of the DPoP rows: the cached JWT as Bearer, driven the same way (generator, same server)',
      driver: 'generator',
      expect: { allowed: true },
      frames: (count: number) =>
        Promise.resolve(
          Array.from({ length: count }, (_, i) =>
            framedCheckRequest({ path: ORDERS, headers: { authorization: `Bearer ${cachedJwt}` } }, i),
          ),
        ),
      server: 'dpop-memory',
    },
    {
      id: 'dpop-rs256',
      title: 'DPoP, never-seen RS256 proof (RSA-2048 client key), cached token (replay cache in memory)',
      driver: 'generator',
      expect: { allowed: true },
      targetRatio: 0.5,
      frames: rsaProofs,
      server: 'dpop-memory',
    },
    {
      id: 'dpop-redis',
      title: 'DPoP, never-seen proof, cached token (replay cache in Redis)',
      driver: 'generator',
      expect: { allowed: true },
      frames: proofs,
      server: 'dpop-redis',
    },
  ];
}

/** Why an answer is not the decision a scenario expects, or undefined when it is. */
export function decisionMismatch(
  expect: Expectation,
  grpcStatus: number,
  res: { status?: { code?: number }; denied_response?: { status?: { code?: string | number } } } | undefined,
): string | undefined {
  if (grpcStatus !== 0 || !res) return `the Check RPC failed (grpc-status ${grpcStatus})`;
  const allowed = (res.status?.code ?? 0) === 0;
  if (expect.allowed)
    return allowed ? undefined : `expected allow, got deny ${String(res.denied_response?.status?.code)}`;
  if (allowed) return `expected deny ${expect.status}, got allow`;
  const code = res.denied_response?.status?.code;
  const names: Record<string, number> = {
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    BadRequest: 400,
    ServiceUnavailable: 503,
  };
  const n = typeof code === 'number' ? code : names[String(code)];
  return n === expect.status ? undefined : `expected deny ${expect.status}, got ${String(code)}`;
}
