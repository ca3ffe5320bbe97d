// Fuzzing the gRPC surface: random and mutated CheckRequests against the running server.
// Oracle: never an RPC error, never a 5xx (no dependency is down here), and never an allow that
// the request could not earn (a protected route without the one valid key).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { applyEnvoy, type CheckResponseMsg } from '../support/envoy.ts';
import { Gen, prng, randomCheckRequest } from '../support/fuzz.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);

const CONFIG = `
credentials:
  api_key: { headers: [x-api-key], query_param: api_key, store: { type: file, path: keys.yaml } }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], scopes: [reports:read] }
`;

let svc: TestService;
let key: string;

beforeAll(async () => {
  const dir = tempDir();
  key = (
    await createKey(FileKeyStore.init(join(dir, 'keys.yaml')), 'pcl', {
      clientId: 'fuzz-client',
      scopes: ['orders:read'],
    })
  ).key;
  svc = await startService(CONFIG, { dir });
  svc.service.app.log.level = 'silent';
});
afterAll(async () => svc?.stop());

const SPOOF = /admin|root|evil/;

describe(`fuzzing Check (seed ${SEED}, ${ITERATIONS} requests)`, () => {
  it('no RPC errors, no 5xx, no unearned allows, no spoofed identity upstream', async () => {
    const g = new Gen(prng(SEED));
    const counts = { allowed: 0, denied: {} as Record<string, number> };
    const batch = 25;
    for (let i = 0; i < ITERATIONS; i += batch) {
      const cases = Array.from({ length: Math.min(batch, ITERATIONS - i) }, () => randomCheckRequest(g, key));
      const results = await Promise.all(
        cases.map((c) =>
          svc.checkRaw(c.req, 5000).then(
            (r) => ({ ok: true as const, r }),
            (e: Error) => ({ ok: false as const, e }),
          ),
        ),
      );
      results.forEach((res, j) => {
        const where = `seed ${SEED} case ${i + j}`;
        if (!res.ok) throw new Error(`${where}: RPC error ${res.e.message}`);
        const r: CheckResponseMsg = res.r;
        const c = cases[j];
        if ((r.status?.code ?? 0) === 0) {
          counts.allowed++;
          const route = r.dynamic_metadata?.fields?.route?.stringValue;
          if (route !== 'public') expect(c.carriesKey, `${where}: allowed on ${route} without the key`).toBe(true);
          const http = (c.req as { attributes: { request: { http: Record<string, unknown> } } }).attributes.request
            .http;
          if (http.headers || http.header_map) {
            const up = applyEnvoy(c.req as never, r).upstreamHeaders;
            for (const name of ['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method', 'x_user_id']) {
              if (up[name] !== undefined) expect(up[name], `${where}: ${name} upstream`).not.toMatch(SPOOF);
            }
            for (const k of Object.keys(up))
              expect(k.startsWith('x-auth-') && k !== 'x-auth-method', `${where}: ${k} upstream`).toBe(false);
            expect(up['x-api-key'], `${where}: key forwarded`).toBeUndefined();
          }
        } else {
          const code = r.denied_response?.status?.code;
          const status =
            typeof code === 'number'
              ? code
              : ({ BadRequest: 400, Unauthorized: 401, Forbidden: 403 } as Record<string, number>)[code ?? ''];
          expect([400, 401, 403], `${where}: status ${code}`).toContain(status);
          counts.denied[status] = (counts.denied[status] ?? 0) + 1;
        }
      });
    }
    console.log(`fuzz: ${ITERATIONS} requests, allowed ${counts.allowed}, denied ${JSON.stringify(counts.denied)}`);
    // The generator must exercise both outcomes, or the oracle proves nothing.
    expect(counts.allowed).toBeGreaterThan(0);
    expect(Object.keys(counts.denied).length).toBeGreaterThanOrEqual(3);
  }, 900_000);
});
