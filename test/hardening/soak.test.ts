// Soak: sustained Checks against a real `portcullis serve` process across every credential kind
// (API keys, JWTs and opaque tokens from the real oidc-provider, public routes, and denies of each
// kind, with never-seen credentials mixed in all along), the oracle on every answer.
// Asserts: zero wrong decisions; memory flat after warm-up (the live heap each major GC leaves,
// read from the server's --trace-gc, and RSS peaks; tolerances below); no event-loop stall over 50 ms
// in the server (prom-client's monitorEventLoopDelay gauge portcullis_nodejs_eventloop_lag_max_seconds,
// reset at every scrape).
// On a shared machine the OS scheduler delays every process: an idle control process measures
// that delay the same way, and stalls are judged in the seconds the control was on time (when a
// quarter of the run has none, the machine is too busy to judge and the test says so);
// SOAK_STALL=absolute judges every second, for a quiet machine.
// SOAK_SECONDS: 20 by default (CI); `npm run test:hardening` runs 600.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import {
  ALLOW,
  DENY,
  checkTarget,
  drive,
  fixedProbe,
  freshTokenProbe,
  scrape,
  sleep,
  spawnPortcullis,
  type CheckTarget,
  type PortcullisChild,
  type Probe,
} from '../support/faults.ts';
import { DEFAULT_RESOURCE, DEFAULT_SCOPES, INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { tempDir } from '../support/service.ts';
import { CLIENT, forgedJwt, tamperedJwt } from './fault-fixture.ts';

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 20);
const SOAK_RATE = Number(process.env.SOAK_RATE ?? 800);
const WARMUP_SECONDS = Math.max(6, Math.round(SOAK_SECONDS * 0.2));
/** Allowed growth from the first to the last measurement window after warm-up. */
const RSS_TOLERANCE_MB = Number(process.env.SOAK_RSS_TOLERANCE_MB ?? 24);
const HEAP_TOLERANCE_MB = Number(process.env.SOAK_HEAP_TOLERANCE_MB ?? 4);
const STALL_MS = 50;
const ABSOLUTE_STALLS = process.env.SOAK_STALL === 'absolute';
/** A second counts as quiet when the idle control's own event-loop delay stayed under this. */
const QUIET_CONTROL_MS = 20;
/** Cache caps small enough to be reached during warm-up: what stays after it is the steady state. */
const CACHE_ENTRIES = Number(process.env.SOAK_CACHE_ENTRIES ?? 500);

let idp: TestIdp;
let portcullis: PortcullisChild;
let target: CheckTarget;
let apiKey: string;
let otherKey: string;
let serverStartedAt = 0;

/** Major GCs of the server's main isolate from its --trace-gc lines: when, live heap after, pause. */
function majorGcs(logFile: string): Array<{ atMs: number; afterMb: number; pauseMs: number }> {
  const byIsolate = new Map<string, Array<{ atMs: number; afterMb: number; pauseMs: number }>>();
  const re =
    /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: Mark-Compact(?: \(reduce\))? [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+)/;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const list = byIsolate.get(m[1]) ?? [];
    list.push({ atMs: Number(m[2]), afterMb: Number(m[3]), pauseMs: Number(m[4]) });
    byIsolate.set(m[1], list);
  }
  // The main isolate holds the service; any other (a worker thread, a loader's) stays tiny.
  return (
    [...byIsolate.values()].sort(
      (a, b) => Math.max(...b.map((g) => g.afterMb)) - Math.max(...a.map((g) => g.afterMb)),
    )[0] ?? []
  );
}

beforeAll(async () => {
  const dir = tempDir('portcullis-soak-');
  // Short token lifetimes: caches turn over during the soak instead of only filling up.
  idp = await startIdp({
    opaqueTtl: 120,
    resources: { [DEFAULT_RESOURCE]: { scope: DEFAULT_SCOPES, format: 'jwt', ttl: 120 } },
  });
  const store = FileKeyStore.init(join(dir, 'keys.yaml'));
  apiKey = (await createKey(store, 'pcl', { clientId: 'soak-key', scopes: ['orders:read'] })).key;
  otherKey = (await createKey(store, 'pcl', { clientId: 'soak-reports', scopes: ['reports:read'] })).key;
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(
    file,
    `
server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
logging: { level: info }
realm: api.example.com
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
  jwt:
    - issuer: ${idp.issuer}
      audiences: [${DEFAULT_RESOURCE}]
      jwks_uri: ${idp.jwksUri}
      allow_http: true
      algorithms: [RS256]
  # Bounded caches, reached during warm-up, so what the soak then measures is the steady state.
  jwt_cache: { max_entries: ${CACHE_ENTRIES}, rejected_max_entries: ${CACHE_ENTRIES} }
  introspection:
    endpoint: ${idp.introspectionEndpoint}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    timeout_ms: 3000 # the IdP shares a loaded 2-core machine with the load generator; Envoy's 200 ms is the production budget
    max_per_second: 2000
    cache: { max_ttl_seconds: 60, negative_ttl_seconds: 5, max_entries: ${CACHE_ENTRIES}, negative_max_entries: ${CACHE_ENTRIES} }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
  - { name: orders-read, match: { methods: [GET], path_prefix: /v1/orders }, auth: [jwt, oauth2, api-key], scopes: [orders:read] }
  - { name: orders-write, match: { methods: [POST], path_prefix: /v1/orders }, auth: [jwt, oauth2, api-key], scopes: [orders:write] }
  - { name: reports, match: { path_prefix: /v1/reports }, auth: [api-key], scopes: [reports:read] }
`,
  );
  // SOAK_NODE_ARGS: V8 flags for the server (e.g. --trace-gc, --max-semi-space-size=32) to study GC pauses.
  // --trace-gc: every major GC logs the live heap it leaves, the exact figure for "memory flat".
  serverStartedAt = Date.now();
  portcullis = await spawnPortcullis(file, dir, {
    name: 'soak',
    nodeArgs: ['--trace-gc', ...(process.env.SOAK_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
  });
  target = checkTarget(portcullis.grpcAddress);
}, 120_000);

afterAll(async () => {
  target?.close();
  if (portcullis && portcullis.proc.exitCode === null) {
    portcullis.kill('SIGKILL');
    await portcullis.exited;
  }
  await idp?.close();
});

/** Sends at most once per `everyMs` (for credentials that cost an IdP call each). */
function paced(probe: Probe, everyMs: number): Probe {
  let last = 0;
  return {
    ...probe,
    build() {
      const now = Date.now();
      if (now - last < everyMs) return undefined;
      last = now;
      return probe.build();
    },
  };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
/** An idle node process measuring its own event-loop delay like prom-client does (resolution 10 ms). */
function startControl(): { samples: Array<{ at: number; max: number }>; stop(): void } {
  const script = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }); h.enable();
setInterval(() => { process.stdout.write(String(h.max / 1e9) + '\\n'); h.reset(); }, 250);`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const samples: Array<{ at: number; max: number }> = [];
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      samples.push({ at: Date.now(), max: Number(buf.slice(0, i)) });
      buf = buf.slice(i + 1);
    }
  });
  return { samples, stop: () => void proc.kill('SIGKILL') };
}

const mb = (bytes: number) => bytes / 1024 / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe(`soak (${SOAK_SECONDS} s at up to ${SOAK_RATE} Checks/s)`, () => {
  it(
    'zero wrong decisions, memory flat after warm-up, no event-loop stall over 50 ms',
    async () => {
      // The steady (cached) tokens live 120 s: they are replaced every 60 s, well before their exp
      // (an expired one is rightly denied, and the oracle would have to guess the instant).
      const steady = {
        jwt: await idp.jwtAccessToken('orders:read'),
        opaque: await idp.opaqueAccessToken('orders:read'),
      };
      const jwt = steady.jwt;
      const forged: string[] = [];
      const attacker = (await generateKeyPair('RS256')).privateKey;
      for (let i = 0; i < 50; i++) forged.push(await forgedJwt(idp, 'orders:read', attacker));
      const jwtFresh: string[] = [];
      const opaqueFresh: string[] = [];
      let minting = true;
      let minted = 0;
      // Never-seen tokens all along: ~5 JWTs and ~5 opaque tokens a second (the IdP's clock, too,
      // moves on, and the earlier tokens expire out of the caches).
      let renewedAt = Date.now();
      const minter = (async () => {
        while (minting) {
          if (Date.now() - renewedAt > 60_000) {
            try {
              steady.jwt = await idp.jwtAccessToken('orders:read');
              steady.opaque = await idp.opaqueAccessToken('orders:read');
              renewedAt = Date.now();
            } catch {
              // retried on the next round; the old tokens have 60 s left
            }
          }
          try {
            if (jwtFresh.length < 200) jwtFresh.push(await idp.jwtAccessToken('orders:read'));
            if (opaqueFresh.length < 200) opaqueFresh.push(await idp.opaqueAccessToken('orders:read'));
            minted += 2;
          } catch {
            // The IdP is in this process; a hiccup only means fewer fresh tokens.
          }
          await sleep(200);
        }
      })();
      while (jwtFresh.length < 5) await sleep(50);

      let forgedIndex = 0;
      const probes: Probe[] = [
        fixedProbe('public', { path: '/public/docs' }, { allowed: true, status: 200 }),
        fixedProbe('anonymous', { path: '/v1/orders/7' }, DENY(401)),
        fixedProbe('no-route', { path: '/admin/users' }, DENY(403)),
        fixedProbe('bad-path', { path: '/v1/orders/%2e%2e/admin' }, DENY(400)),
        fixedProbe('api-key', { path: '/v1/orders/7', headers: { 'x-api-key': apiKey } }, ALLOW('api-key', 'soak-key')),
        fixedProbe(
          'api-key-reports',
          { path: '/v1/reports/q1', headers: { 'x-api-key': otherKey } },
          ALLOW('api-key', 'soak-reports'),
        ),
        fixedProbe(
          'api-key-scope',
          { method: 'POST', path: '/v1/orders', headers: { 'x-api-key': apiKey } },
          DENY(403),
        ),
        {
          name: 'api-key-unknown',
          build: () => ({ path: '/v1/orders/7', headers: { 'x-api-key': generateApiKey('pcl') } }),
          expect: () => DENY(401),
        },
        {
          name: 'jwt',
          build: () => ({ path: '/v1/orders/7', headers: bearer(steady.jwt) }),
          expect: () => ALLOW('jwt', CLIENT),
        },
        {
          name: 'jwt-scope',
          build: () => ({ method: 'POST', path: '/v1/orders', headers: bearer(steady.jwt) }),
          expect: () => DENY(403),
        },
        fixedProbe('jwt-on-api-key-route', { path: '/v1/reports/q1', headers: bearer(jwt) }, DENY(401)),
        fixedProbe(
          'jwt-tampered',
          { method: 'POST', path: '/v1/orders', headers: bearer(tamperedJwt(jwt)) },
          DENY(401),
        ),
        {
          name: 'jwt-forged',
          build: () => ({ path: '/v1/orders/7', headers: bearer(forged[forgedIndex++ % forged.length]) }),
          expect: () => DENY(401),
        },
        freshTokenProbe('jwt-fresh', jwtFresh, 150, ALLOW('jwt', CLIENT), undefined, { recycle: false }),
        {
          name: 'opaque',
          build: () => ({ path: '/v1/orders/7', headers: bearer(steady.opaque) }),
          expect: () => ALLOW('oauth2', CLIENT),
        },
        {
          name: 'opaque-scope',
          build: () => ({ method: 'POST', path: '/v1/orders', headers: bearer(steady.opaque) }),
          expect: () => DENY(403),
        },
        freshTokenProbe('opaque-fresh', opaqueFresh, 150, ALLOW('oauth2', CLIENT), undefined, { recycle: false }),
        paced(
          {
            name: 'opaque-unknown',
            build: () => ({
              path: '/v1/orders/7',
              headers: bearer(`soak-${Math.random().toString(36).slice(2)}${'x'.repeat(30)}`),
            }),
            expect: () => DENY(401),
          },
          100,
        ),
        fixedProbe(
          'two-credentials',
          { path: '/v1/orders/7', headers: { 'x-api-key': apiKey, ...bearer(jwt) } },
          DENY(400),
        ),
      ];

      const samples: Array<{
        t: number;
        at: number;
        rss: number;
        heap: number;
        heapTotal: number;
        external: number;
        lagMax: number;
        lagP99: number;
      }> = [];
      const control = startControl();
      const traffic = drive({ target, probes, concurrency: 16, ratePerSecond: SOAK_RATE, deadlineMs: 5000 });
      const start = Date.now();
      // --trace-gc stamps are ms since the server started; warm-up ends this long into its life.
      const warmupAtServerMs = Date.now() - serverStartedAt + WARMUP_SECONDS * 1000;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sleep(1000);
          const m = await scrape(portcullis.httpBase);
          samples.push({
            t: (Date.now() - start) / 1000,
            at: Date.now(),
            rss: m.get('portcullis_process_resident_memory_bytes') ?? NaN,
            heap: m.get('portcullis_nodejs_heap_size_used_bytes') ?? NaN,
            heapTotal: m.get('portcullis_nodejs_heap_size_total_bytes') ?? NaN,
            external: m.get('portcullis_nodejs_external_memory_bytes') ?? NaN,
            lagMax: m.get('portcullis_nodejs_eventloop_lag_max_seconds') ?? NaN,
            lagP99: m.get('portcullis_nodejs_eventloop_lag_p99_seconds') ?? NaN,
          });
        }
      })();
      await sleep(SOAK_SECONDS * 1000);
      sampling = false;
      minting = false;
      const oracle = await traffic.stop();
      await Promise.all([sampler, minter]);
      control.stop();
      const seconds = (Date.now() - start) / 1000;

      // RSS: V8 lets the heap grow to ~100 MB between major GCs and sizes its reserve to the
      // allocation rate, so RSS swings with it. What V8 does not hold — RSS minus the committed heap:
      // code, buffers, native allocations — is compared between the first and last fifth after warm-up.
      const after = samples.filter((s) => s.t > WARMUP_SECONDS);
      const w = Math.max(3, Math.floor(after.length / 5));
      const offHeap = (xs: typeof after) => median(xs.map((s) => s.rss - s.heapTotal));
      const rssGrowth = mb(offHeap(after.slice(-w)) - offHeap(after.slice(0, w)));
      // Heap: the live set each major GC (Mark-Compact) leaves behind, from the server's --trace-gc.
      const majors = majorGcs(portcullis.logFile).filter((g) => g.atMs / 1000 > warmupAtServerMs / 1000);
      const heapGrowth = majors.length >= 2 ? majors[majors.length - 1].afterMb - majors[0].afterMb : NaN;
      const lagMaxMs = Math.max(...after.map((s) => s.lagMax)) * 1000;
      const lagP99Ms = Math.max(...after.map((s) => s.lagP99)) * 1000;
      // The control's worst delay over the same second (its samples are 250 ms apart).
      const controlLag = (s: { at: number }) =>
        Math.max(0, ...control.samples.filter((c) => c.at > s.at - 1250 && c.at <= s.at + 250).map((c) => c.max)) *
        1000;
      const controlMaxMs = Math.max(...after.map(controlLag));
      const excessMs = Math.max(...after.map((s) => s.lagMax * 1000 - controlLag(s)));
      // Seconds in which the idle control itself was scheduled on time: the machine was not the cause.
      const quiet = after.filter((s) => controlLag(s) < QUIET_CONTROL_MS);
      const quietLagMs = Math.max(0, ...quiet.map((s) => s.lagMax * 1000));
      // The CI run (20 s, beside other suites on shared cores) reports stalls; the 10-minute soak judges them.
      const judgeStalls =
        (SOAK_SECONDS >= 300 || ABSOLUTE_STALLS) && (ABSOLUTE_STALLS || quiet.length >= after.length / 4);
      const perKind = [...oracle.perProbe].map(([n, s]) => `${n}=${s.correct}`).join(' ');
      const report = [
        `soak: ${seconds.toFixed(0)} s, ${oracle.total} Checks (${(oracle.total / seconds).toFixed(0)}/s), correct ${oracle.correct}, wrong ${oracle.wrong}; ${minted} fresh tokens minted`,
        `soak: per probe ${perKind}`,
        `soak: RSS ${mb(after[0].rss).toFixed(1)} MB after warm-up, ${mb(after[after.length - 1].rss).toFixed(1)} MB at end (range ${mb(Math.min(...after.map((s) => s.rss))).toFixed(1)}-${mb(Math.max(...after.map((s) => s.rss))).toFixed(1)}); RSS outside the V8 heap ${mb(offHeap(after.slice(0, w))).toFixed(1)} -> ${mb(offHeap(after.slice(-w))).toFixed(1)} MB: ${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MB (tolerance ${RSS_TOLERANCE_MB})`,
        `soak: heap used ${mb(Math.min(...after.map((s) => s.heap))).toFixed(1)}-${mb(Math.max(...after.map((s) => s.heap))).toFixed(1)} MB; live heap after each major GC since warm-up: ${majors.map((g) => g.afterMb.toFixed(1)).join(', ') || 'none'} MB (growth ${Number.isNaN(heapGrowth) ? 'n/a' : heapGrowth.toFixed(1)}, tolerance ${HEAP_TOLERANCE_MB}); longest major GC pause ${Math.max(0, ...majors.map((g) => g.pauseMs)).toFixed(0)} ms`,
        `soak: event loop max lag ${lagMaxMs.toFixed(1)} ms, worst p99 ${lagP99Ms.toFixed(1)} ms; idle control process max ${controlMaxMs.toFixed(1)} ms; worst excess over the control ${excessMs.toFixed(1)} ms; max lag in the ${quiet.length}/${after.length} quiet seconds ${quietLagMs.toFixed(1)} ms (limit ${STALL_MS} ms, ${ABSOLUTE_STALLS ? 'absolute' : judgeStalls ? 'judged on quiet seconds' : SOAK_SECONDS < 300 ? 'reported only: short run' : 'NOT JUDGED: machine too busy'}); Check latency max ${oracle.latencyMaxMs} ms`,
      ];
      console.log(report.join('\n'));
      if (process.env.SOAK_SAMPLES) console.log(JSON.stringify(samples));

      expect(oracle.wrongSamples).toEqual([]);
      expect(oracle.wrong).toBe(0);
      expect(oracle.correct).toBe(oracle.total);
      // Every kind was exercised.
      for (const p of probes) expect(oracle.perProbe.get(p.name)?.correct ?? 0, p.name).toBeGreaterThan(0);
      expect(rssGrowth).toBeLessThan(RSS_TOLERANCE_MB);
      // A short run may see no major GC after warm-up; the 10-minute run sees dozens.
      if (!Number.isNaN(heapGrowth)) expect(heapGrowth).toBeLessThan(HEAP_TOLERANCE_MB);
      if (SOAK_SECONDS >= 300) expect(majors.length).toBeGreaterThanOrEqual(3);
      if (judgeStalls) expect(ABSOLUTE_STALLS ? lagMaxMs : quietLagMs).toBeLessThan(STALL_MS);
      expect(portcullis.proc.exitCode).toBeNull();
    },
    (SOAK_SECONDS + 120) * 1000,
  );
});
