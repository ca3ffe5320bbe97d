// Fault suite, Redis side, against a real `portcullis serve` process and a real redis-server:
//   - Redis killed (SIGKILL, like a crash) and restarted on the same port;
//   - Redis blackholed (a TCP hop that keeps connections open and drops every byte: a partition,
//     where commands hang until command_timeout_ms instead of failing fast).
// The key store serves from each replica's local copy, so known keys (valid or revoked) stay
// exactly correct; what needs Redis (an unknown key, a rate limit with on_redis_error: deny)
// denies with 503; a limit with on_redis_error: allow keeps allowing. Afterwards the service
// must recover by itself, including a key created after the restart.
// @module-tag redis-server
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { RedisConnection } from '../../src/stores/redis/connection.ts';
import { RedisKeyStore } from '../../src/stores/redis/keystore.ts';
import {
  ALLOW,
  DENY,
  checkTarget,
  fixedProbe,
  sleep,
  spawnPortcullis,
  startTcpProxy,
  waitUntil,
  type CheckTarget,
  type PortcullisChild,
  type Probe,
  type TcpProxy,
} from '../support/faults.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { tempDir } from '../support/service.ts';
import { runFault } from './fault-run.ts';

const config = (redisUrl: string) => `
server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
logging: { level: info }
# command_timeout_ms: generous for a loaded 2-core CI machine (production default: 100 ms).
redis: { url: "${redisUrl}", key_prefix: "faults:", connect_timeout_ms: 500, command_timeout_ms: 400 }
credentials:
  api_key: { headers: [x-api-key], store: { type: redis } }
rate_limits:
  - { name: lenient, key: client_id, limit: 100000000, window_seconds: 60 }
  - { name: strict, key: key_id, limit: 100000000, window_seconds: 60, on_redis_error: deny }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], rate_limit: lenient }
  - { name: payments, match: { path_prefix: /v1/payments }, auth: [api-key], rate_limit: strict }
`;

let redis: TestRedis;
let proxy: TcpProxy;
let portcullis: PortcullisChild;
let target: CheckTarget;
let admin: RedisKeyStore;

beforeAll(async () => {
  redis = await startRedis();
  proxy = await startTcpProxy(redis.port);
  const dir = tempDir('portcullis-faults-redis-');
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, config(`redis://127.0.0.1:${proxy.port}`));
  portcullis = await spawnPortcullis(file, dir);
  target = checkTarget(portcullis.grpcAddress);
  const cfg = parseConfig(config(redis.url)).redis!;
  admin = new RedisKeyStore(new RedisConnection(cfg, pino({ level: 'silent' })), {
    resyncSeconds: 30,
    log: pino({ level: 'silent' }),
    ownsConnection: true,
  });
}, 60_000);

afterAll(async () => {
  target?.close();
  if (portcullis && portcullis.proc.exitCode === null) {
    portcullis.kill('SIGKILL');
    await portcullis.exited;
  }
  await admin?.close();
  await proxy?.close();
  await redis?.stop();
});

/** createKey through the admin connection, retried while it reconnects after a restart. */
async function createKeyRetrying(clientId: string): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return (await createKey(admin, 'pcl', { clientId })).key;
    } catch (e) {
      if (i > 50) throw e;
      await sleep(100);
    }
  }
}

async function redisProbes(tag: string): Promise<{ probes: Probe[]; fresh: string[] }> {
  const key = await createKeyRetrying(`${tag}-steady`);
  const { key: doomed, record } = await createKey(admin, 'pcl', { clientId: `${tag}-doomed` });
  await revokeKey(admin, record.id);
  const fresh: string[] = [];
  let freshKey: string | undefined;
  const h = (k: string) => ({ 'x-api-key': k });
  const probes: Probe[] = [
    fixedProbe('public', { path: '/public/x' }, { allowed: true, status: 200 }),
    fixedProbe('anonymous', { path: '/v1/orders/1' }, DENY(401)),
    fixedProbe('api-key', { path: '/v1/orders/1', headers: h(key) }, ALLOW('api-key', `${tag}-steady`)),
    fixedProbe('api-key-revoked', { path: '/v1/orders/1', headers: h(doomed) }, DENY(401)),
    fixedProbe(
      'api-key-bad-checksum',
      { path: '/v1/orders/1', headers: h(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')) },
      DENY(401),
    ),
    fixedProbe('api-key-unknown', { path: '/v1/orders/1', headers: h(generateApiKey('pcl')) }, DENY(401)),
    fixedProbe('limit-fail-open', { path: '/v1/reports/q1', headers: h(key) }, ALLOW('api-key', `${tag}-steady`)),
    fixedProbe('limit-fail-closed', { path: '/v1/payments/9', headers: h(key) }, ALLOW('api-key', `${tag}-steady`)),
    {
      // A key created after Redis came back must start passing on its own (pub/sub or resync).
      name: 'api-key-created-after',
      build: () => {
        if (!freshKey && fresh.length) freshKey = fresh[0];
        return freshKey ? { path: '/v1/orders/1', headers: h(freshKey) } : undefined;
      },
      expect: () => ALLOW('api-key', `${tag}-after`),
    },
  ];
  // The local copy must know the new keys before the fault: the steady one passes and the
  // revoked one is refused as revoked (a 401 for an unknown key would prove nothing).
  const check = (k: string) =>
    target.check(
      {
        attributes: {
          request: {
            http: {
              method: 'GET',
              path: '/v1/orders/1',
              host: 'api.example.com',
              headers: { ':path': '/v1/orders/1', 'x-api-key': k },
            },
          },
        },
      },
      2000,
    );
  await waitUntil(async () => !(await check(key)).denied_response, 15_000, `key ${tag}-steady reaching the replica`);
  await waitUntil(
    async () => (await check(doomed)).dynamic_metadata?.fields?.reason?.stringValue === 'api_key_revoked',
    15_000,
    `revoked key ${tag}-doomed reaching the replica`,
  );
  return { probes, fresh };
}

const STEADFAST = ['public', 'anonymous', 'api-key', 'api-key-revoked', 'api-key-bad-checksum', 'limit-fail-open'];

describe('Redis faults under traffic', () => {
  it('Redis killed and restarted: keys in the local copy stay exact, Redis-only answers deny with 503, then recovers by itself', async () => {
    const { probes, fresh } = await redisProbes('kill');
    await redis.client().save(); // the restarted Redis comes back with its data, as after a failover
    const { oracle } = await runFault('Redis killed and restarted', {
      target,
      probes,
      steadfast: STEADFAST,
      // Every probe, named: the oracle only knows probes it has seen answered, and the key created
      // at heal may not have been sampled yet when the others are already correct. It reaches the
      // replica by pub/sub or, if the subscriber was still reconnecting, by the next second's
      // version check; recovery is when it passes too.
      recoveredWhen: probes.map((p) => p.name),
      inject: () => redis.kill(),
      heal: async () => {
        await redis.restart();
        fresh.push(await createKeyRetrying('kill-after'));
      },
    });
    expect(oracle.perProbe.get('api-key-unknown')!.denied).toBeGreaterThan(0);
    expect(oracle.perProbe.get('limit-fail-closed')!.denied).toBeGreaterThan(0);
  }, 300_000);

  it('Redis blackholed (connections open, nothing answers): same guarantees, answers within command_timeout_ms, then recovers', async () => {
    const { probes, fresh } = await redisProbes('hole');
    const { oracle } = await runFault('Redis blackholed', {
      target,
      probes,
      steadfast: STEADFAST,
      recoveredWhen: probes.map((p) => p.name),
      inject: async () => proxy.set('blackhole'),
      heal: async () => {
        proxy.set('pass');
        fresh.push(await createKeyRetrying('hole-after'));
      },
    });
    expect(oracle.perProbe.get('limit-fail-closed')!.denied).toBeGreaterThan(0);
    expect([...oracle.deniedDuringFault.keys()].filter((k) => k.startsWith('rpc:'))).toEqual([]);
  }, 300_000);
});
