// Hand-edited key records through the running server (gRPC, Envoy's protos, a keys.yaml the test
// writes by hand): a record that does not pass the key-record schema is locked out, so its key
// gets 401 invalid_token (api_key_record_invalid), and nothing of it is partly trusted:
// `routes: orders-internal-admin` (a string) does not grant route `orders` by substring, and a
// scope with a space is never sent upstream as two scopes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/credentials/api-key/format.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';

const INVALID = 'Bearer realm="api.example.com", error="invalid_token"';
const keys = {
  good: generateApiKey('pcl'),
  substring: generateApiKey('pcl'),
  spaced: generateApiKey('pcl'),
  typo: generateApiKey('pcl'),
  restricted: generateApiKey('pcl'),
};
let svc: TestService;
let file: string;

const records = (substringRoutes: string) => `keys:
  - { id: key_good, hash: ${hashApiKey(keys.good)}, client_id: partner-a, scopes: [orders:read], status: active }
  - { id: key_substring, hash: ${hashApiKey(keys.substring)}, client_id: partner-b, scopes: [orders:read], routes: ${substringRoutes}, status: active }
  - { id: key_spaced, hash: ${hashApiKey(keys.spaced)}, client_id: partner-c, scopes: ["orders:read orders:write"], status: active }
  - { id: key_typo, hash: ${hashApiKey(keys.typo)}, client_id: partner-d, scopes: [orders:read], route: [orders-internal-admin], status: active }
  - { id: key_restricted, hash: ${hashApiKey(keys.restricted)}, client_id: partner-e, scopes: [orders:read], routes: [orders-internal-admin], status: active }
`;

beforeAll(async () => {
  const dir = tempDir();
  file = join(dir, 'keys.yaml');
  writeFileSync(file, records('orders-internal-admin'));
  svc = await startService(
    `
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
routes:
  - { name: orders, match: { methods: [GET], path_prefix: /v1/orders }, auth: [api-key], scopes: [orders:read] }
  - { name: orders-internal-admin, match: { path_prefix: /internal/orders }, auth: [api-key], scopes: [orders:read] }
`,
    { dir },
  );
});

afterAll(async () => {
  await svc?.stop();
});

async function ask(key: string, path = '/v1/orders/7') {
  const out = await svc.envoy({ method: 'GET', path, headers: { 'x-api-key': key } });
  return { ...out, reason: out.response.dynamic_metadata?.fields?.reason?.stringValue };
}

describe('hand-edited key records', () => {
  it('an invalid record is locked out: 401 invalid_token, api_key_record_invalid, nothing upstream; the valid ones serve', async () => {
    const good = await ask(keys.good);
    expect({
      status: good.status,
      scopes: good.upstreamHeaders['x-scopes'],
      client: good.upstreamHeaders['x-client-id'],
    }).toEqual({
      status: 200,
      scopes: 'orders:read',
      client: 'partner-a',
    });
    for (const key of [keys.substring, keys.spaced, keys.typo]) {
      for (const path of ['/v1/orders/7', '/internal/orders/7']) {
        const out = await ask(key, path);
        expect({ status: out.status, challenge: out.clientHeaders['www-authenticate'], reason: out.reason }).toEqual({
          status: 401,
          challenge: INVALID,
          reason: 'api_key_record_invalid',
        });
        expect(JSON.parse(out.body!)).toEqual({
          error: 'invalid_token',
          error_description: 'The credential is invalid',
        });
        expect(out.upstreamHeaders).toEqual({});
      }
    }
    // A well-formed route list is matched by whole names: the admin route only.
    const restricted = await ask(keys.restricted);
    expect({ status: restricted.status, reason: restricted.reason }).toEqual({
      status: 403,
      reason: 'api_key_route_not_allowed',
    });
    expect((await ask(keys.restricted, '/internal/orders/7')).status).toBe(200);
  });

  it('each locked record is logged by id with what is wrong, and no key is', () => {
    const logged = svc.logs.map((l) => JSON.parse(l)).filter((l) => l.msg?.startsWith('API key record is invalid'));
    expect(Object.fromEntries(logged.map((l) => [l.key_id, l.problems]))).toEqual({
      key_substring: ['routes: Invalid input: expected array, received string'],
      key_spaced: [expect.stringMatching(/^scopes\.0: one scope per entry/)],
      key_typo: [expect.stringMatching(/^\(record\): Unrecognized key: "route"/)],
    });
    const all = svc.logs.join('\n');
    for (const k of Object.values(keys)) expect(all.includes(k)).toBe(false);
  });

  it('fixed by hand, the record serves after the file is reloaded (routes as a list, matched whole)', async () => {
    writeFileSync(file, records('[orders]'));
    await waitFor(async () => (await ask(keys.substring)).status === 200, 5000, 50);
    const admin = await ask(keys.substring, '/internal/orders/7');
    expect({ status: admin.status, reason: admin.reason }).toEqual({
      status: 403,
      reason: 'api_key_route_not_allowed',
    });
  });
});
