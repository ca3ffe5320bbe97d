// Redis credentials never reach a log line, /readyz or an error: the URL is parsed the way ioredis
// parses it (WHATWG URL: the userinfo ends at the LAST `@`), and no part of the userinfo, nor any
// query value (ioredis takes `?password=` from there), is printed. Sentinel and Cluster passwords are
// options of their own and never part of what is printed.
// @module-tag redis-server
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/plumbing/redact-url.ts';
import { ConfigError, parseConfig } from '../../src/policy/load.ts';
import { describeRedisTarget } from '../../src/stores/redis/connection.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';
import { startService, waitFor, type TestService } from '../support/service.ts';

/** URL, the secrets in it (no part of which may be printed), and the host:port that must be. */
const MEMBERS: Array<[string, string[], string]> = [
  ['redis://:Sup3r@Secret@host:6379', ['Sup3r', 'Secret'], 'host:6379'],
  ['redis://alice:Sup3r@Secret@host:6379/2', ['alice', 'Sup3r', 'Secret'], 'host:6379/2'],
  ['redis://alice@host:6379', ['alice'], 'host:6379'],
  ['redis://user:pa:ss:word@host', ['user', 'pa:ss', 'word'], 'host'],
  ['redis://:p%40ss%3Aw0rd%2F@host:6379', ['p%40ss', 'p@ss', 'w0rd'], 'host:6379'],
  ['rediss://default:T0ps3cret@redis.example.com:6380/0', ['default', 'T0ps3cret'], 'redis.example.com:6380/0'],
  ['redis://u:Pa55@[::1]:6379', ['Pa55'], '[::1]:6379'],
  ['redis://host:6379?password=Qu3ryPass&username=qu3ryuser', ['Qu3ryPass', 'qu3ryuser'], 'host:6379'],
  ['redis://:a@b@c@host:1', ['a@b@c', 'a@b', 'b@c'], 'host:1'],
];

describe('redactUrl (parsed as ioredis parses it)', () => {
  it.each(MEMBERS)('%s: no part of the userinfo or query values, the real host kept', (url, secrets, host) => {
    const out = redactUrl(url);
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out).toContain(host);
    expect(new URL(out).host).toBe(new URL(url).host);
  });

  it('says that there was a userinfo, never what it was', () => {
    expect(redactUrl('redis://:Sup3r@Secret@host:6379')).toBe('redis://***@host:6379');
    expect(redactUrl('redis://host:6379')).toBe('redis://host:6379');
    expect(redactUrl('redis://host:6379?password=x&db=2')).toBe('redis://host:6379?password=***&db=***');
  });

  it('an unparseable URL is never echoed', () => {
    expect(redactUrl('redis://:Sup3r Secret@ho st:6379')).toBe('(unparseable URL)');
  });

  it('Sentinel and Cluster descriptions carry addresses only, never password / sentinel_password', () => {
    const sentinel = parseConfig(
      `redis: { mode: sentinel, sentinels: [{ host: s1, port: 26379 }], sentinel_name: m, username: opsuser, password: "Sup3r@Secret", sentinel_password: "S3nt@Pass" }`,
    ).redis!;
    const cluster = parseConfig(
      `redis: { mode: cluster, nodes: ["n1:7000", "[::1]:7001"], username: opsuser, password: "Sup3r@Secret" }`,
    ).redis!;
    for (const d of [describeRedisTarget(sentinel), describeRedisTarget(cluster)]) {
      for (const s of ['Sup3r', 'Secret', 'S3nt', 'opsuser']) expect(d).not.toContain(s);
    }
    expect(describeRedisTarget(sentinel)).toBe('sentinel m via s1:26379');
    expect(describeRedisTarget(cluster)).toBe('cluster n1:7000,[::1]:7001');
  });

  it('refuses credentials inside Sentinel / Cluster addresses and unparseable URLs, without echoing them', () => {
    for (const yaml of [
      `redis: { mode: cluster, nodes: ["admin:H1dden@n1:7000"] }`,
      `redis: { mode: cluster, nodes: ["H1dden@n1:7000"] }`,
      `redis: { mode: sentinel, sentinels: [{ host: "admin:H1dden@s1", port: 26379 }], sentinel_name: m }`,
      `redis: { url: "redis://:H1dden@host:99999" }`,
    ]) {
      let err: unknown;
      try {
        parseConfig(yaml);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).toMatch(/^redis\.(nodes\[0\]|sentinels\[0\]\.host|url): /);
      expect((err as Error).message).not.toContain('H1dden');
    }
  });
});

describe('a running server: logs and /readyz', () => {
  let redis: TestRedis;
  const services: TestService[] = [];
  const PASSWORD = 'Sup3r@Secret';

  beforeAll(async () => {
    redis = await startRedis();
    // An `@` in the password, which ioredis accepts as is (the userinfo ends at the last `@`).
    await redis.client().config('SET', 'requirepass', PASSWORD);
  });

  afterAll(async () => {
    for (const s of services) await s.stop();
    await redis?.stop();
  });

  async function serve(redisYaml: string): Promise<TestService> {
    const svc = await startService(`
redis: ${redisYaml}
credentials:
  api_key: { headers: [x-api-key], store: { type: redis } }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
`);
    services.push(svc);
    return svc;
  }

  async function everythingPrinted(svc: TestService): Promise<string> {
    const readyz = await (await fetch(`${svc.httpBase}/readyz`)).text();
    return `${svc.logs.join('\n')}\n${readyz}`;
  }

  it('connects with redis://:Sup3r@Secret@host (ioredis reads it as we do) and prints no part of the password', async () => {
    const svc = await serve(`{ url: "redis://:${PASSWORD}@127.0.0.1:${redis.port}", key_prefix: "redact:" }`);
    await waitFor(() => svc.service.app.isReady(), 10_000);
    const printed = await everythingPrinted(svc);
    expect(printed).toContain(`redis://***@127.0.0.1:${redis.port}`);
    for (const s of ['Sup3r', 'Secret']) expect(printed).not.toContain(s);
  });

  it('a wrong user and password: not ready, and neither appears in logs or /readyz', async () => {
    const svc = await serve(`{ url: "redis://opsuser:Wr0ng@Pa55@127.0.0.1:${redis.port}", connect_timeout_ms: 300 }`);
    await waitFor(() => svc.logs.some((l) => l.includes('redis unavailable')), 5000);
    const readyz = await fetch(`${svc.httpBase}/readyz`);
    expect(readyz.status).toBe(503);
    const printed = await everythingPrinted(svc);
    expect(printed).toContain(`***@127.0.0.1:${redis.port}`);
    for (const s of ['opsuser', 'Wr0ng', 'Pa55']) expect(printed).not.toContain(s);
  });

  it('unreachable rediss:// with a user, a percent-encoded password and a query password: nothing of them printed', async () => {
    const svc = await serve(
      `{ url: "rediss://opsuser:p%40ss%3Aw0rd@127.0.0.1:1/3?password=Qu3ryPass", connect_timeout_ms: 300 }`,
    );
    await waitFor(() => svc.logs.some((l) => l.includes('redis unavailable')), 5000);
    const printed = await everythingPrinted(svc);
    expect(printed).toContain('rediss://***@127.0.0.1:1/3?password=***');
    for (const s of ['opsuser', 'p%40ss', 'p@ss', 'w0rd', 'Qu3ryPass']) expect(printed).not.toContain(s);
  });

  it('Sentinel and Cluster: password and sentinel_password never printed', async () => {
    const sentinel = await serve(
      `{ mode: sentinel, sentinels: [{ host: 127.0.0.1, port: 1 }], sentinel_name: mymaster, username: opsuser, password: "Sup3r@Secret", sentinel_password: "S3nt@Pass", connect_timeout_ms: 300 }`,
    );
    const cluster = await serve(
      `{ mode: cluster, nodes: ["127.0.0.1:1"], username: opsuser, password: "Sup3r@Secret", connect_timeout_ms: 300 }`,
    );
    await new Promise((r) => setTimeout(r, 800));
    for (const svc of [sentinel, cluster]) {
      const printed = await everythingPrinted(svc);
      expect(printed).toMatch(/(sentinel mymaster via|cluster) 127\.0\.0\.1:1/);
      for (const s of ['opsuser', 'Sup3r', 'Secret', 'S3nt', 'Pass']) expect(printed).not.toContain(s);
    }
  });
});
