// `npm run bench`: Portcullis against the gRPC floor, in the same run, on the same machine.
// See docs/performance.md for what is measured, how, and how to read the table.
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runGenerator } from './lib/generator.ts';
import { connect, h2Check } from './lib/h2call.ts';
import { H2LOAD_INSTALL_HINT, h2loadVersion, runH2load, type LoadResult } from './lib/h2load.ts';
import { decisionCounts, shareWithStatus } from './lib/metrics.ts';
import { framedCheckRequest } from './lib/payloads.ts';
import {
  buildCheckout,
  DIST_ENTRY,
  freePort,
  REPO_ROOT,
  RssSampler,
  startNode,
  waitUntil,
  type Proc,
} from './lib/processes.ts';
import { allCpus, pinningFor, pinProcess, type CpuPinning } from './lib/cpu-pinning.ts';
import { dpopConfig } from './lib/dpop.ts';
import { apiKeySpec, decisionMismatch, scenarios, type Scenario } from './lib/scenarios.ts';
import { newWorkdir, prepareWorkspace, type IntrospectionTarget, type Workspace } from './lib/setup.ts';
import { markdownTable, type BenchRow } from './lib/markdown.ts';
import { mean, median } from './lib/stats.ts';
import { readCpuTimes, stealShare } from './lib/steal.ts';

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    markdown: { type: 'string' },
    scenarios: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    clients: { type: 'string', default: '4' },
    streams: { type: 'string', default: '32' },
    'gen-connections': { type: 'string', default: '4' },
    'gen-streams': { type: 'string', default: '32' },
    'gen-threads': { type: 'string', default: '1' },
    'fixed-rate': { type: 'string', default: '2000' },
    'rate-connections': { type: 'string', default: '1' },
    'soak-minutes': { type: 'string' },
    workers: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'floor-channelz-off': { type: 'boolean', default: false },
    'node-args': { type: 'string', default: '' },
    'pin-server': { type: 'string' },
    pairs: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  console.log(`npm run bench -- [options]
  --quick              short smoke run: 2 s per scenario, no soak, no workers scaling
  --json               print the results as JSON (stdout) instead of the table
  --scenarios a,b      only these scenarios (ids: api-key, jwt-cached, jwt-policy, jwt-policy-baseline,
                       jwt-rs256-new, jwt-es256-new, opaque-cached, deny-no-credential, rate-limited,
                       dpop-memory, dpop-rs256, dpop-redis, dpop-baseline; the dpop rows run on Portcullis
                       instances of their own, dpop-redis with a redis-server)
  --duration S         measured seconds per run (default 5; quick 2)
  --warmup S           warm-up seconds before each run (default 1)
  --rounds N           floor/Portcullis run pairs per scenario, and A/A pairs; the median pair is reported (default 4; quick 1)
  --clients N          h2load connections (default 4)   --streams N  streams per connection (default 32)
  --fixed-rate R       Checks/s for the latency comparison (default 2000; 0 skips it)
  --rate-connections N h2load connections for it, one stream each, R/N per connection (default 1;
                       the older method used 4)
  --soak-minutes N     RSS soak at 50% of max load (default 10; quick 0)
  --workers 2,4        also measure 'portcullis serve --workers N' on the API-key scenario (default 2; quick none)
  --profile            run Portcullis and the floor under node --cpu-prof (profiles in bench/results/profiles/)
  --floor-channelz-off the floor with grpc-js channelz off, as Portcullis runs (default: grpc-js defaults)
  --node-args "…"      extra node flags for Portcullis, e.g. "--trace-gc" (output in its log; with --keep)
  --pin-server CPUS    servers on these CPUs (taskset list: 0, 0-1), the bench and its load generators on
                       the others, so the load does not take CPU from the server it drives (default 0
                       where taskset and two CPUs exist; the --workers runs are always unpinned)
  --pin-server none    servers and load share every CPU (the older method)
  --pairs concurrent   each throughput pair runs the floor and Portcullis at the same time, each with
                       its own load, on the same server CPU, so the host's drift hits both alike;
                       A/A pairs (the floor against a second floor) first give the method's own error,
                       Portcullis driven alongside them so neither gets a head start (default;
                       docs/performance.md, "Concurrent pairs", "No head start")
  --pairs alternating  one after the other, the order alternating from round to round (the older
                       pairing); no A/A pairs
                       Either way, every scenario first runs once on both servers, unmeasured.
  --keep               keep the run directory (configs, logs) and print its path
  --out FILE           also write the JSON results to FILE
  --markdown FILE      also write the table as Markdown to FILE`);
  process.exit(0);
}

const quick = opt.quick;
const DURATION = Number(opt.duration ?? (quick ? 2 : 5));
const WARMUP = Number(opt.warmup ?? (quick ? 1 : 1));
const ROUNDS = Number(opt.rounds ?? (quick ? 1 : 4));
const CLIENTS = Number(opt.clients);
const STREAMS = Number(opt.streams);
const SOAK_MINUTES = Number(opt['soak-minutes'] ?? (quick ? 0 : 10));
const FIXED_RATE = Number(opt['fixed-rate']);
const RATE_CONNECTIONS = Number(opt['rate-connections']);
if (!Number.isInteger(RATE_CONNECTIONS) || RATE_CONNECTIONS < 1) {
  console.error(`--rate-connections: "${opt['rate-connections']}" is not a whole number of connections (1 or more)`);
  process.exit(3);
}
const NODE_ARGS = opt['node-args'].split(/\s+/).filter(Boolean);
let PIN: CpuPinning | undefined;
const PAIRS = opt.pairs ?? 'concurrent';
if (PAIRS !== 'concurrent' && PAIRS !== 'alternating') {
  console.error(`--pairs: "${PAIRS}" is not a pairing; use concurrent or alternating`);
  process.exit(3);
}
// Worker counts below 2 are one process, already measured: `--workers 0` (or 1) skips the scaling run.
const WORKERS = (opt.workers ?? (quick ? '' : '2'))
  .split(',')
  .filter(Boolean)
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 2);
const only = opt.scenarios?.split(',').map((s) => s.trim());

const say = (msg: string) => process.stderr.write(`${msg}\n`);
const MB = (b: number) => Math.round(b / 1024 / 1024);

interface Row extends BenchRow {
  title: string;
  /** Checks/s of each run, and of the floor run paired with it. */
  runs?: number[];
  floorRuns?: number[];
  /** Generator rows: the highest share of its CPUs the generator used in a floor run. */
  floorGeneratorCpuShare?: number;
}

async function main(): Promise<number> {
  const h2load = h2loadVersion();
  if (!h2load) {
    say(H2LOAD_INSTALL_HINT);
    return 3;
  }
  try {
    PIN = pinningFor(opt['pin-server']);
  } catch (e) {
    say((e as Error).message);
    return 3;
  }
  if (PIN) {
    // Before anything is started: h2load, the generator's threads and the identity provider
    // inherit this process's CPUs; the servers get theirs explicitly.
    pinProcess(PIN.load);
    say(
      `pinned: servers on CPU ${PIN.server}, the bench and its load on CPU ${PIN.load} (--pin-server none to share every CPU)`,
    );
  } else {
    say(
      `not pinned: the servers and the load share every CPU${opt['pin-server'] === 'none' ? '' : ' (pinning needs taskset and two CPUs or more)'}`,
    );
  }
  const startedAt = new Date();
  const cpuAtStart = readCpuTimes();
  const dir = newWorkdir();
  const procs: Proc[] = [];
  const closers: Array<() => Promise<void>> = [];
  try {
    // An identity provider for the opaque-token scenario: the same real oidc-provider the tests use.
    let introspection: IntrospectionTarget | undefined;
    let opaqueToken: string | undefined;
    const wantOpaque = !only || only.includes('opaque-cached');
    if (wantOpaque) {
      try {
        const { startIdp, INTROSPECTION_CLIENT } = await import('../test/support/idp.ts');
        const idp = await startIdp({ opaqueTtl: 24 * 3600 });
        closers.push(() => idp.close());
        introspection = {
          endpoint: idp.introspectionEndpoint,
          clientId: INTROSPECTION_CLIENT.client_id,
          clientSecret: INTROSPECTION_CLIENT.client_secret,
          issuer: idp.issuer,
        };
        opaqueToken = await idp.opaqueAccessToken('orders:read');
      } catch (e) {
        say(`opaque-cached: no identity provider (${(e as Error).message}); that scenario is skipped`);
      }
    }

    // Portcullis runs compiled, as in production: dist/ from the current sources first.
    say('building dist/ (tsc -b tsconfig.build.json)');
    buildCheckout(REPO_ROOT);
    const ws = await prepareWorkspace(dir, { grpc: await freePort(), http: await freePort() }, introspection);
    const floorPort = await freePort();
    const profileDir = join(REPO_ROOT, 'bench', 'results', 'profiles', startedAt.toISOString().replace(/[:.]/g, '-'));
    if (opt.profile) {
      mkdirSync(join(profileDir, 'floor'), { recursive: true });
      say(
        `profiles (node --cpu-prof) go to ${profileDir}/{portcullis,floor}; summarize with: node --import tsx bench/profile-summary.ts <file>`,
      );
    }
    const floor = startNode(
      'floor',
      'bench/floor-server.ts',
      [String(floorPort), ...(opt['floor-channelz-off'] ? ['channelz-off'] : [])],
      {
        logFile: join(dir, 'floor.log'),
        nodeArgs: opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'floor')}`] : [],
        cpus: PIN?.server,
      },
    );
    procs.push(floor);
    const portcullis = startPortcullis(
      ws,
      ws.configFile,
      'portcullis',
      opt.profile ? join(profileDir, 'portcullis') : undefined,
    );
    procs.push(portcullis);
    await waitReady(portcullis, ws.httpPort);
    await waitFloor(floor, floorPort);
    const rssP = new RssSampler(portcullis);
    const rssF = new RssSampler(floor);

    const all = scenarios(ws, opaqueToken).filter((s) => !only || only.includes(s.id));
    if (only)
      for (const id of only)
        if (!all.some((s) => s.id === id)) throw new Error(`unknown scenario "${id}" (see --help)`);

    // The DPoP rows run on Portcullis instances of their own (bench/lib/dpop.ts): the main config
    // stays without credentials.dpop, so every other row measures what it always did.
    const main: Target = { proc: portcullis, grpcPort: ws.grpcPort, httpPort: ws.httpPort, rss: rssP };
    const targets = new Map<string, Target>();
    for (const s of all.filter((x) => x.server)) {
      const kind = s.server!;
      try {
        let redisUrl: string | undefined;
        if (kind === 'dpop-redis') {
          const { startRedis } = await import('../test/support/redis.ts');
          const redis = await startRedis();
          closers.push(() => redis.stop());
          redisUrl = redis.url;
        }
        const ports = { grpc: await freePort(), http: await freePort() };
        const file = join(dir, `portcullis-${kind}.yaml`);
        const from = { grpc: ws.grpcPort, http: ws.httpPort };
        writeFileSync(file, dpopConfig(readFileSync(ws.configFile, 'utf8'), from, ports, redisUrl));
        const p = startPortcullis(ws, file, `portcullis-${kind}`, opt.profile ? join(profileDir, kind) : undefined);
        procs.push(p);
        await waitReady(p, ports.http);
        targets.set(kind, { proc: p, grpcPort: ports.grpc, httpPort: ports.http, rss: new RssSampler(p) });
      } catch (e) {
        s.skip = `no ${kind} server (${(e as Error).message})`;
      }
    }
    const target = (s: Scenario): Target => (s.server ? (targets.get(s.server) ?? main) : main);

    // Preflight: every payload must get its expected decision before anything is measured.
    say('preflight: checking each scenario gets its expected decision');
    const session = await connect(ws.grpcPort);
    for (const s of all) {
      if (s.skip) continue;
      const frames = s.spec ? [framedCheckRequest(s.spec)] : await s.frames!(2);
      const own = s.server ? await connect(target(s).grpcPort) : undefined;
      const sess = own ?? session;
      for (let i = 0; i < (s.primeRequests ?? 0); i++) await h2Check(sess, frames[0]);
      for (const f of frames) {
        const got = await h2Check(sess, f);
        const problem = decisionMismatch(s.expect, got.grpcStatus, got.response);
        if (problem) {
          const reason = got.response?.dynamic_metadata?.fields?.reason?.stringValue;
          if (reason && /_not_configured$/.test(reason))
            s.skip = `this build does not verify that credential yet (Portcullis answered ${reason})`;
          else throw new Error(`preflight ${s.id}: ${problem}`);
        }
      }
      own?.close();
      say(`  ${s.id}: ${s.skip ? `skipped: ${s.skip}` : 'ok'}`);
    }
    session.close();
    const floorSession = await connect(floorPort);
    if ((await h2Check(floorSession, framedCheckRequest({ path: '/' }))).grpcStatus !== 0)
      throw new Error('preflight: the floor did not answer OK');
    floorSession.close();

    const rows: Row[] = [];
    // One request log per port: the two runs of a concurrent pair never share one.
    const h2 = (port: number, file: string, extra: Partial<Parameters<typeof runH2load>[0]> = {}) =>
      runH2load({
        port,
        dataFile: file,
        clients: CLIENTS,
        streams: STREAMS,
        durationSeconds: DURATION,
        warmupSeconds: WARMUP,
        logFile: join(dir, `h2load-${port}.log`),
        ...extra,
      });
    const payloadFile = (s: Scenario) => {
      const f = join(dir, `${s.id}.bin`);
      writeFileSync(f, framedCheckRequest(s.spec!));
      return f;
    };

    // A/A: the floor against a second floor, paired the same way. Two identical servers should
    // read 1.00; how far they stray is the method's own error on this machine in this run.
    let calibration: { ratios: number[]; median: number; min: number; max: number } | undefined;
    if (PAIRS === 'concurrent') {
      const portB = await freePort();
      const floorB = startNode(
        'floor-b',
        'bench/floor-server.ts',
        [String(portB), ...(opt['floor-channelz-off'] ? ['channelz-off'] : [])],
        { logFile: join(dir, 'floor-b.log'), cpus: PIN?.server },
      );
      procs.push(floorB);
      await waitFloor(floorB, portB);
      // The API-key payload, whichever rows were chosen: the floors answer OK to anything, and
      // Portcullis is driven with it all the while (its own h2load, not measured): a server that
      // gets its load before the other one keeps a lead over it for the rest of the run, so the
      // floor must not have the A/A pairs to itself (docs/performance.md, "No head start").
      const file = join(dir, 'calibration.bin');
      writeFileSync(file, framedCheckRequest(apiKeySpec(ws)));
      const alongside = <T>(run: Promise<T>, seconds: number) =>
        Promise.all([run, h2(ws.grpcPort, file, { durationSeconds: seconds })]).then(([r]) => r);
      await alongside(Promise.all([floorPort, portB].map((port) => h2(port, file, { durationSeconds: 2 }))), 2);
      const ratios: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        say(`[${round}/${ROUNDS}] A/A: the floor and a second floor at once (h2load), Portcullis driven alongside…`);
        const [a, b] = await alongside(
          throughputPair(
            round,
            () => h2(floorPort, file),
            () => h2(portB, file),
          ),
          DURATION,
        );
        ratios.push(b.rps / a.rps);
        say(`  floor ${Math.round(a.rps)}/s, second floor ${Math.round(b.rps)}/s (${ratios.at(-1)!.toFixed(2)}×)`);
      }
      await floorB.stop();
      calibration = {
        ratios: ratios.map((x) => +x.toFixed(3)),
        median: +median(ratios).toFixed(3),
        min: +Math.min(...ratios).toFixed(3),
        max: +Math.max(...ratios).toFixed(3),
      };
    }

    // Warm-up, not measured, right before the rounds: every scenario once on both servers, paired
    // the same way, so that the first round does not measure V8 compiling them or getting back up
    // to speed after an idle spell (docs/performance.md, "Warm-up").
    const warmGen = {
      connections: Number(opt['gen-connections']),
      streams: Number(opt['gen-streams']),
      warmupSeconds: 1,
      durationSeconds: 1,
      threads: 1,
    };
    say('warm-up: each scenario on both servers, not measured');
    for (const s of all.filter((x) => !x.skip)) {
      if (s.driver === 'h2load') {
        const file = payloadFile(s);
        await throughputPair(
          1,
          () => h2(floorPort, file, { durationSeconds: 2 }),
          () => h2(ws.grpcPort, file, { durationSeconds: 2 }),
        );
      } else {
        const frames = await s.frames!(3000);
        await throughputPair(
          1,
          () => runGenerator({ ...warmGen, port: floorPort, frames }),
          () => runGenerator({ ...warmGen, port: target(s).grpcPort, frames }),
        );
      }
    }

    // Each scenario run is paired with a floor run, and the pairs repeat for --rounds: on a shared
    // machine the load drifts within seconds, so ratios are taken per pair and the median pair is
    // reported. A pair runs both at once (--pairs concurrent) or one after the other, the order
    // alternating from round to round (--pairs alternating).
    const floorRuns: Measured[] = [];
    const genFloorRuns: Measured[] = [];
    const measured: Array<{
      s: Scenario;
      pairs: Array<[Measured, Measured]>;
      peak: number;
      shares: number[];
      exhausted: boolean;
    }> = [];
    const gen = {
      connections: Number(opt['gen-connections']),
      streams: Number(opt['gen-streams']),
      warmupSeconds: WARMUP,
      durationSeconds: DURATION,
      threads: Number(opt['gen-threads']),
    };
    const runnable = all.filter((s) => !s.skip);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of runnable) {
        const tag = `[${round}/${ROUNDS}] ${s.id}`;
        let floorRun: Measured;
        let run: Measured;
        let exhausted = false;
        const t = target(s);
        const before = await decisionCounts(t.httpPort);
        // Steal over the pair itself: the generator rows read it again once their tokens are signed.
        let cpuBefore = readCpuTimes();
        if (s.driver === 'h2load') {
          const file = payloadFile(s);
          // With --pairs alternating the order alternates from round to round, so an order effect
          // (the second run of a pair meeting a warmer or busier machine) cannot favour either server.
          say(`${tag}: ${pairLabel(round)} (h2load)…`);
          [floorRun, run] = await throughputPair(
            round,
            () => withCpu(floor, WARMUP, () => h2(floorPort, file)),
            () => (rssP.reset(), withCpu(portcullis, WARMUP, () => h2(ws.grpcPort, file))),
          );
          floorRuns.push(floorRun);
        } else {
          // Run the same way against both: one pool of never-seen tokens per round, each frame sent
          // once to the floor and once to Portcullis (the floor ignores tokens). The pool is sized
          // for the faster of the two; a run that exhausts it ends early and its rate is taken over
          // the time it ran. (A floor of 3,000/s, so a slow round cannot starve the next one. Before
          // any generator floor run, twice the fastest h2load floor run, which the generator's floor
          // stays below; 40,000/s, above what one generator thread drives, before any floor run at
          // all. An oversized pool is not free: each generator thread holds a copy, and a first
          // round with a much larger pool than the later ones read high, cause not isolated.)
          const expectRate = genFloorRuns.length
            ? Math.max(3000, ...genFloorRuns.map((r) => r.rps))
            : floorRuns.length
              ? Math.max(3000, 2 * Math.max(...floorRuns.map((r) => r.rps)))
              : 40_000;
          const count = Math.min(200_000, Math.ceil(expectRate * (DURATION + WARMUP) * 1.2));
          say(`${tag}: building ${count} requests (a never-seen token or proof in each)…`);
          const frames = await s.frames!(count);
          cpuBefore = readCpuTimes();
          const drive = async (p: Proc, port: number) => {
            const r = await withGeneratorCpu(p, (hooks) => runGenerator({ ...gen, port, frames, ...hooks }));
            // Zero seconds: the pool ran out before the warm-up ended, so nothing was measured.
            if (r.seconds <= 0) throw new Error(`${s.id}: the token pool ran out during warm-up; lower --warmup`);
            exhausted ||= p === t.proc && r.exhausted;
            return r;
          };
          say(`${tag}: ${pairLabel(round)} (generator)…`);
          [floorRun, run] = await throughputPair(
            round,
            () => drive(floor, floorPort),
            () => (t.rss.reset(), drive(t.proc, t.grpcPort)),
          );
          genFloorRuns.push(floorRun);
        }
        const share = shareWithStatus(
          before,
          await decisionCounts(t.httpPort),
          s.expect.allowed ? 200 : s.expect.status,
        ).share;
        let m = measured.find((x) => x.s === s);
        if (!m) measured.push((m = { s, pairs: [], peak: 0, shares: [], exhausted: false }));
        m.pairs.push([floorRun, run]);
        m.peak = Math.max(m.peak, t.rss.peak());
        m.shares.push(share);
        m.exhausted ||= exhausted;
        say(
          `  floor ${Math.round(floorRun.rps)}/s, Portcullis ${Math.round(run.rps)}/s (${(run.rps / floorRun.rps).toFixed(2)}×); CPU ${floorRun.cpuUsPerCheck.toFixed(0)} vs ${run.cpuUsPerCheck.toFixed(0)} µs/Check${generatorNote(floorRun, run)}${stealNote(stealShare(cpuBefore, readCpuTimes()))}`,
        );
      }
    }
    const floorPeak = rssF.peak();
    if (floorRuns.length)
      rows.push(floorRow('floor', 'gRPC floor (grpc-js, no-op Check)', 'h2load', floorRuns, floorPeak));
    if (genFloorRuns.length)
      rows.push(floorRow('floor-generator', 'gRPC floor, distinct payloads', 'generator', genFloorRuns, floorPeak));
    for (const m of measured) rows.push(row(m.s, m.pairs, m.peak, Math.min(...m.shares), m.exhausted));
    for (const s of all.filter((x) => x.skip))
      rows.push({
        scenario: s.id,
        title: s.title,
        driver: s.driver,
        checksPerSecond: NaN,
        p50Ms: NaN,
        p99Ms: NaN,
        ratioToFloor: NaN,
        cpuUsPerCheck: NaN,
        cpuRatioToFloor: NaN,
        peakRssMB: NaN,
        skipped: s.skip,
      });

    // Latency at a fixed, moderate rate: what Envoy's callers feel when the service is not saturated.
    let fixedRate: Record<string, unknown> | undefined;
    const apiKey = all.find((s) => s.id === 'api-key');
    if (FIXED_RATE > 0 && apiKey && !apiKey.skip) {
      const file = payloadFile(apiKey);
      // One connection, one stream: each Check is sent when the one before it has been answered,
      // paced by h2load's --rps timer, so nothing queues and the figure is what a Check adds.
      // h2load's connections tick together: with N of them, N Checks land on the server at once
      // and all but the first wait for the others, so the p50 grows with N for both servers and
      // the difference between them is multiplied too (docs/performance.md, "Latency at a fixed rate").
      const clients = RATE_CONNECTIONS;
      const opts = { clients, streams: 1, rpsPerClient: Math.ceil(FIXED_RATE / clients) };
      // Paired and repeated, but always one after the other, whatever --pairs says (two servers
      // at once would queue behind each other); the median of each figure is reported.
      const fs: LoadResult[] = [];
      const ps: LoadResult[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        say(`[${round}/${ROUNDS}] fixed rate ${FIXED_RATE}/s, api-key: ${orderLabel(round)}…`);
        const [f, p] = await inPairOrder(
          round,
          () => h2(floorPort, file, opts),
          () => h2(ws.grpcPort, file, opts),
        );
        fs.push(f);
        ps.push(p);
        say(
          `  p50 ${fs.at(-1)!.p50Ms.toFixed(3)} vs ${ps.at(-1)!.p50Ms.toFixed(3)} ms, p99 ${fs.at(-1)!.p99Ms.toFixed(3)} vs ${ps.at(-1)!.p99Ms.toFixed(3)} ms`,
        );
      }
      const med = (rs: LoadResult[]) => ({
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
      });
      const f = med(fs);
      const p = med(ps);
      fixedRate = {
        rate: FIXED_RATE,
        connections: clients,
        floor: { checksPerSecond: f.rps, p50Ms: f.p50Ms, p99Ms: f.p99Ms },
        apiKey: { checksPerSecond: p.rps, p50Ms: p.p50Ms, p99Ms: p.p99Ms },
        p50DeltaMs: p.p50Ms - f.p50Ms,
        p99Ratio: p.p99Ms / f.p99Ms,
        met: p.p50Ms - f.p50Ms <= 0.2 && p.p99Ms <= 1.5 * f.p99Ms,
      };
    }

    // Workers: the same API-key scenario against `serve --workers N`.
    const workers: Array<Record<string, unknown>> = [];
    const single = rows.find((r) => r.scenario === 'api-key');
    if (WORKERS.length && apiKey && !apiKey.skip && single) {
      // Scaling is about using more CPUs, so this part runs unpinned, whatever the rest did: the
      // workers, the single process they are compared with and h2load all share every CPU.
      if (PIN) {
        say(`workers: unpinned for the scaling runs (every CPU, ${allCpus()}, shared with the load)`);
        pinProcess(allCpus());
        pinProcess(allCpus(), portcullis.pid);
      }
      try {
        for (const n of WORKERS) {
          const ports = { grpc: await freePort(), http: await freePort() };
          const file = join(dir, `portcullis-workers-${n}.yaml`);
          writeFileSync(
            file,
            readFileSync(ws.configFile, 'utf8')
              .replace(`127.0.0.1:${ws.grpcPort}`, `127.0.0.1:${ports.grpc}`)
              .replace(`127.0.0.1:${ws.httpPort}`, `127.0.0.1:${ports.http}`),
          );
          const p = startPortcullis(ws, file, `portcullis-workers-${n}`, undefined, n, null);
          procs.push(p);
          await waitReady(p, ports.http);
          // /readyz answers from whichever worker took the connection: wait for all of them
          // (the aggregated portcullis_ready counts ready workers).
          await waitUntil(
            `all ${n} workers to be ready`,
            async () =>
              new RegExp(`^portcullis_ready ${n}$`, 'm').test(
                await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text(),
              ),
            60_000,
            p,
          );
          const rss = new RssSampler(p);
          // Right after a single-process run, so both see the same machine load.
          say(`api-key, one process, for comparison…`);
          const one = await withCpu(portcullis, WARMUP, () =>
            h2(ws.grpcPort, payloadFile(apiKey), { clients: Math.max(CLIENTS, 2 * n) }),
          );
          say(`api-key with --workers ${n}…`);
          // A longer warm-up: every worker compiles and JITs the hot path on its own.
          const r = await withCpu(p, WARMUP + 3, () =>
            h2(ports.grpc, payloadFile(apiKey), { clients: Math.max(CLIENTS, 2 * n), warmupSeconds: WARMUP + 3 }),
          );
          workers.push({
            workers: n,
            checksPerSecond: Math.round(r.rps),
            singleProcessChecksPerSecond: Math.round(one.rps),
            scaling: +(r.rps / one.rps).toFixed(2),
            p50Ms: r.p50Ms,
            p99Ms: r.p99Ms,
            cpuUsPerCheck: +r.cpuUsPerCheck.toFixed(1),
            singleProcessCpuUsPerCheck: +one.cpuUsPerCheck.toFixed(1),
            peakRssMB: MB(rss.peak()),
          });
          rss.stop();
          await p.stop();
        }
      } finally {
        if (PIN) {
          pinProcess(PIN.load);
          pinProcess(PIN.server, portcullis.pid);
        }
      }
    }

    // Soak: 50% of the API-key maximum, RSS sampled; flat means within ±10% of the first minute.
    let soak: Record<string, unknown> | undefined;
    if (SOAK_MINUTES > 0 && apiKey && !apiKey.skip && single) {
      // 50% of what Portcullis reaches alone on its CPU: a concurrent pair's rate is that of half a CPU.
      let max = single.checksPerSecond;
      if (PAIRS === 'concurrent') {
        say('api-key, Portcullis alone, for the soak rate…');
        max = (await h2(ws.grpcPort, payloadFile(apiKey))).rps;
      }
      soak = {
        ...(await runSoak(ws, all, max * 0.5, SOAK_MINUTES, portcullis, dir)),
        maxChecksPerSecond: Math.round(max),
      };
    }

    rssP.stop();
    rssF.stop();
    for (const t of targets.values()) t.rss.stop();
    const result = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryGB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        h2load,
        loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)),
        stealShare: roundShare(stealShare(cpuAtStart, readCpuTimes())),
      },
      settings: {
        portcullis: DIST_ENTRY.script,
        floorChannelz: !opt['floor-channelz-off'],
        pinning: PIN ?? null,
        pairs: PAIRS,
        quick,
        durationSeconds: DURATION,
        warmupSeconds: WARMUP,
        rounds: ROUNDS,
        clients: CLIENTS,
        streams: STREAMS,
        generator: gen,
      },
      calibration: calibration ?? null,
      rows,
      fixedRate,
      workers,
      soak,
    };
    if (opt.out) writeFileSync(opt.out, JSON.stringify(result, null, 2));
    if (opt.markdown) writeFileSync(opt.markdown, markdownTable(rows));
    if (opt.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else printReport(result);
    const failed =
      rows.filter((r) => r.met === false).length +
      (fixedRate && fixedRate.met === false ? 1 : 0) +
      (soak && soak.flat === false ? 1 : 0);
    return failed && !quick ? 1 : 0;
  } finally {
    for (const p of procs.reverse()) await p.stop();
    for (const c of closers) await c().catch(() => {});
    if (!opt.keep) rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}

/**
 * A throughput pair. Concurrent: both at once, each with its own load, on the same server CPU, so
 * whatever the host does to that CPU in those seconds it does to both (docs/performance.md,
 * "Concurrent pairs"). Alternating: one after the other, as inPairOrder.
 */
function throughputPair<T>(
  round: number,
  runFloor: () => Promise<T>,
  runPortcullis: () => Promise<T>,
): Promise<[T, T]> {
  if (PAIRS === 'concurrent') return Promise.all([runFloor(), runPortcullis()]);
  return inPairOrder(round, runFloor, runPortcullis);
}

const pairLabel = (round: number) => (PAIRS === 'concurrent' ? 'floor and Portcullis at once' : orderLabel(round));

/** A floor/Portcullis pair: the floor runs first in odd rounds, Portcullis in even ones. */
async function inPairOrder<T>(
  round: number,
  runFloor: () => Promise<T>,
  runPortcullis: () => Promise<T>,
): Promise<[T, T]> {
  if (round % 2 === 1) {
    const f = await runFloor();
    return [f, await runPortcullis()];
  }
  const p = await runPortcullis();
  return [await runFloor(), p];
}

/** The generator's own CPU share in each run of a pair, for the log. */
// At once, both generators are threads of this process, so each side's share is their sum.
const generatorNote = (f: Measured, p: Measured) =>
  f.generatorCpuShare === undefined
    ? ''
    : PAIRS === 'concurrent'
      ? `; the two generators at ${pct(Math.max(f.generatorCpuShare, p.generatorCpuShare!))} of the load CPUs`
      : `; generator at ${pct(f.generatorCpuShare)} vs ${pct(p.generatorCpuShare!)} of its CPUs`;
const pct = (share: number) => `${(share * 100).toFixed(0)}%`;

/** Hypervisor steal over a stretch of the run, for the log: empty where there is none to report. */
const stealNote = (share: number) => (share >= 0.005 ? `; hypervisor steal ${(share * 100).toFixed(0)}%` : '');
const roundShare = (share: number) => (Number.isFinite(share) ? +share.toFixed(3) : null);

const orderLabel = (round: number) => (round % 2 === 1 ? 'floor, then Portcullis' : 'Portcullis, then floor');

/** `cpus`: a taskset list, null for every CPU; by default the servers' CPUs when pinned. */
/** Portcullis as production runs it: the compiled dist/ through bin/portcullis.js (built at the start). */
/** A Portcullis instance a scenario runs against. */
interface Target {
  proc: Proc;
  grpcPort: number;
  httpPort: number;
  rss: RssSampler;
}

function startPortcullis(
  ws: Workspace,
  configFile: string,
  name: string,
  profileDir?: string,
  workers?: number,
  cpus: string | null = PIN?.server ?? null,
): Proc {
  return startNode(
    name,
    DIST_ENTRY.script,
    ['serve', '--config', configFile, ...(workers ? ['--workers', String(workers)] : [])],
    {
      tsx: false,
      logFile: join(ws.dir, `${name}.log`),
      nodeArgs: [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...NODE_ARGS],
      cpus: cpus ?? undefined,
    },
  );
}

async function waitReady(p: Proc, httpPort: number): Promise<void> {
  await waitUntil(
    `${p.name} to be ready (/readyz)`,
    async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200,
    60_000,
    p,
  );
}

async function waitFloor(p: Proc, port: number): Promise<void> {
  await waitUntil(
    'the floor server to listen',
    async () => {
      const s = await connect(port);
      s.close();
      return true;
    },
    30_000,
    p,
  );
}

/** Runs a load and measures the server's CPU time per Check over the measured period (after warm-up). */
async function withCpu<R extends LoadResult>(
  proc: Proc,
  warmupSeconds: number,
  run: () => Promise<R>,
): Promise<R & { cpuUsPerCheck: number }> {
  let startCpu = NaN;
  const t = setTimeout(() => (startCpu = proc.cpuSeconds()), warmupSeconds * 1000);
  const r = await run();
  clearTimeout(t);
  const used = proc.cpuSeconds() - startCpu;
  return { ...r, cpuUsPerCheck: r.requests ? (used * 1e6) / r.requests : NaN };
}

/**
 * The same for the generator, whose threads take a moment to start: the server's CPU is read when
 * the generator starts and stops measuring, so it covers exactly the requests counted. Over the
 * same window it reads this process's own CPU (the generator threads are in it) as a share of the
 * CPUs the load has: when pinned, a share near 1 means the generator, not the server, set the pace.
 */
async function withGeneratorCpu<R extends LoadResult>(
  proc: Proc,
  run: (hooks: { onMeasuring(): void; onStopped(): void }) => Promise<R>,
): Promise<R & { cpuUsPerCheck: number; generatorCpuShare: number }> {
  let startCpu = NaN;
  let endCpu = NaN;
  let own0: NodeJS.CpuUsage | undefined;
  let t0 = 0;
  let generatorCpuShare = NaN;
  const r = await run({
    onMeasuring: () => {
      startCpu = proc.cpuSeconds();
      own0 = process.cpuUsage();
      t0 = performance.now();
    },
    onStopped: () => {
      endCpu = proc.cpuSeconds();
      const own = process.cpuUsage(own0);
      const wallUs = (performance.now() - t0) * 1000;
      generatorCpuShare = (own.user + own.system) / (wallUs * loadCpuCount());
    },
  });
  return { ...r, cpuUsPerCheck: r.requests ? ((endCpu - startCpu) * 1e6) / r.requests : NaN, generatorCpuShare };
}

/** At or above this share of its CPUs, the generator is taken to have set the floor's pace. */
const GENERATOR_BUSY = 0.95;

/** CPUs the bench and its load run on. */
const loadCpuCount = () => (PIN ? PIN.load.split(',').length : cpus().length);

type Measured = LoadResult & { cpuUsPerCheck: number; generatorCpuShare?: number };

function floorRow(id: string, title: string, driver: string, runs: Measured[], peakRss: number): Row {
  return {
    scenario: id,
    title,
    driver,
    checksPerSecond: Math.round(median(runs.map((r) => r.rps))),
    p50Ms: +median(runs.map((r) => r.p50Ms)).toFixed(3),
    p99Ms: +median(runs.map((r) => r.p99Ms)).toFixed(3),
    ratioToFloor: 1,
    cpuUsPerCheck: +median(runs.map((r) => r.cpuUsPerCheck)).toFixed(1),
    cpuRatioToFloor: 1,
    peakRssMB: MB(peakRss),
    runs: runs.map((r) => Math.round(r.rps)),
  };
}

function row(
  s: Scenario,
  pairs: Array<[Measured, Measured]>,
  peakRss: number,
  expectedShare: number,
  exhausted: boolean,
): Row {
  const runs = pairs.map(([, r]) => r);
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) say(`  ${s.id}: ${failed} requests failed at the HTTP/2 level`);
  const ratio = median(pairs.map(([f, r]) => r.rps / f.rps));
  return {
    scenario: s.id,
    title: s.title + (exhausted ? ' (token pool ran out before the end of a run)' : ''),
    driver: s.driver,
    checksPerSecond: Math.round(median(runs.map((r) => r.rps))),
    p50Ms: +median(runs.map((r) => r.p50Ms)).toFixed(3),
    p99Ms: +median(runs.map((r) => r.p99Ms)).toFixed(3),
    ratioToFloor: +ratio.toFixed(3),
    cpuUsPerCheck: +median(runs.map((r) => r.cpuUsPerCheck)).toFixed(1),
    cpuRatioToFloor: +median(pairs.map(([f, r]) => f.cpuUsPerCheck / r.cpuUsPerCheck)).toFixed(3),
    peakRssMB: MB(peakRss),
    targetRatio: s.targetRatio,
    met: s.targetRatio === undefined ? undefined : ratio >= s.targetRatio,
    expectedShare: +expectedShare.toFixed(4),
    runs: runs.map((r) => Math.round(r.rps)),
    floorRuns: pairs.map(([f]) => Math.round(f.rps)),
    ...(s.driver === 'generator'
      ? { floorGeneratorCpuShare: +Math.max(...pairs.map(([f]) => f.generatorCpuShare ?? NaN)).toFixed(3) }
      : {}),
  };
}

async function runSoak(ws: Workspace, all: Scenario[], rate: number, minutes: number, proc: Proc, dir: string) {
  // A mix of every h2load-able path (allow, cached JWT, deny, rate-limited), each its share of the rate.
  const mix = all.filter((s) => s.driver === 'h2load' && !s.skip);
  const perScenario = rate / mix.length;
  say(`soak: ${minutes} min at ${Math.round(rate)} Checks/s (${mix.map((s) => s.id).join(', ')})…`);
  const samples: Array<{ t: number; rssMB: number }> = [];
  const t0 = Date.now();
  const timer = setInterval(
    () => samples.push({ t: Math.round((Date.now() - t0) / 1000), rssMB: +(proc.rss() / 2 ** 20).toFixed(1) }),
    5000,
  );
  const before = await decisionCounts(ws.httpPort);
  const runs = await Promise.all(
    mix.map((s, i) => {
      const f = join(dir, `soak-${s.id}.bin`);
      writeFileSync(f, framedCheckRequest(s.spec!));
      return runH2load({
        port: ws.grpcPort,
        dataFile: f,
        clients: 1,
        streams: 8,
        rpsPerClient: Math.ceil(perScenario),
        durationSeconds: minutes * 60,
        warmupSeconds: 1,
        logFile: join(dir, `soak-${i}.log`),
      });
    }),
  );
  clearInterval(timer);
  const after = await decisionCounts(ws.httpPort);
  // Baseline: the first minute (after start-up allocations settle); end: the last minute.
  const window = (from: number, to: number) => samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.rssMB);
  const first = window(30, 90);
  const last = window(minutes * 60 - 60, minutes * 60 + 5);
  const base = mean(first.length ? first : samples.slice(0, 3).map((s) => s.rssMB));
  const end = mean(last.length ? last : samples.slice(-3).map((s) => s.rssMB));
  const change = end / base - 1;
  return {
    minutes,
    targetChecksPerSecond: Math.round(rate),
    achievedChecksPerSecond: Math.round(runs.reduce((s, r) => s + r.rps, 0)),
    decisions: shareWithStatus(before, after, 200).total,
    rssStartMB: +base.toFixed(1),
    rssEndMB: +end.toFixed(1),
    rssChange: +change.toFixed(3),
    flat: Math.abs(change) <= 0.1,
    samples,
  };
}

function printReport(r: {
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  calibration: { median: number; min: number; max: number } | null;
  rows: Row[];
  fixedRate?: Record<string, unknown>;
  workers: Array<Record<string, unknown>>;
  soak?: Record<string, unknown>;
}): void {
  const m = r.machine;
  console.log(`\nPortcullis vs gRPC floor — ${m.cpus} × ${m.cpuModel}, ${m.memoryGB} GB, Node ${m.node}, ${m.h2load}`);
  console.log(
    `h2load -c ${r.settings.clients} -m ${r.settings.streams} -t 1; ${r.settings.rounds} × (${r.settings.pairs === 'concurrent' ? 'floor and Portcullis at once' : 'floor run, Portcullis run, order alternating'}) per scenario, ` +
      `${r.settings.durationSeconds} s measured after ${r.settings.warmupSeconds} s warm-up; medians; × floor = median of per-pair ratios` +
      (r.settings.pinning
        ? `; servers on CPU ${(r.settings.pinning as CpuPinning).server}, load on CPU ${(r.settings.pinning as CpuPinning).load}`
        : '') +
      (typeof m.stealShare === 'number'
        ? `; hypervisor steal ${(m.stealShare * 100).toFixed(1)}% of CPU time over the run`
        : '') +
      (r.calibration
        ? `\nA/A, the floor against a second floor paired the same way: ${r.calibration.median.toFixed(2)}× (pairs ${r.calibration.min.toFixed(2)}–${r.calibration.max.toFixed(2)})`
        : '') +
      '\n',
  );
  const head = [
    'scenario',
    'driver',
    'Checks/s',
    'p50 ms',
    'p99 ms',
    '× floor',
    'target',
    'CPU µs/Check',
    'CPU × floor',
    'peak RSS',
    'expected',
  ];
  const body = r.rows.map((x) =>
    x.skipped
      ? [x.scenario, x.driver, 'skipped', '', '', '', '', '', '', '', '']
      : [
          x.scenario,
          x.driver,
          String(x.checksPerSecond),
          x.p50Ms.toFixed(2),
          x.p99Ms.toFixed(2),
          x.ratioToFloor.toFixed(2),
          x.targetRatio === undefined ? '' : `≥ ${x.targetRatio} ${x.met ? 'ok' : 'MISSED'}`,
          x.cpuUsPerCheck.toFixed(0),
          x.cpuRatioToFloor.toFixed(2),
          `${x.peakRssMB} MB`,
          x.expectedShare === undefined ? '' : `${(x.expectedShare * 100).toFixed(1)}%`,
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(head));
  for (const b of body) console.log(line(b));
  for (const x of r.rows.filter((y) => y.skipped)) console.log(`  ${x.scenario} skipped: ${x.skipped}`);
  // Pinned, the generator has CPUs of its own; if it used them all, the floor ran at the
  // generator's pace, not its own, and that row's ratio reads high.
  for (const x of r.rows.filter((y) => r.settings.pinning && (y.floorGeneratorCpuShare ?? 0) >= GENERATOR_BUSY)) {
    console.log(
      r.settings.pairs === 'concurrent'
        ? `  note: ${x.scenario}: the two generators used ${pct(x.floorGeneratorCpuShare!)} of the load CPUs in a pair, so the load may have set the pace rather than the servers (more CPUs for the load, or --gen-threads, would tell)`
        : `  note: ${x.scenario}: the generator used ${pct(x.floorGeneratorCpuShare!)} of its CPUs in a floor run, so the floor may be generator-bound and the ratio read high (more CPUs for the load, or --gen-threads, would tell)`,
    );
  }
  type Side = { checksPerSecond: number; p50Ms: number; p99Ms: number };
  const f = r.fixedRate as
    | {
        rate: number;
        connections: number;
        floor: Side;
        apiKey: Side;
        p50DeltaMs: number;
        p99Ratio: number;
        met: boolean;
      }
    | undefined;
  if (f) {
    const delta = `${f.p50DeltaMs >= 0 ? '+' : '−'}${Math.abs(f.p50DeltaMs).toFixed(3)}`;
    console.log(
      `\nAt ${f.rate} Checks/s (API key, ${f.connections} connection${f.connections === 1 ? '' : 's'} × 1 stream): p50 ${f.apiKey.p50Ms.toFixed(3)} ms vs floor ${f.floor.p50Ms.toFixed(3)} ms (${delta}, target ≤ +0.2); ` +
        `p99 ${f.apiKey.p99Ms.toFixed(3)} ms vs ${f.floor.p99Ms.toFixed(3)} ms (${f.p99Ratio.toFixed(2)}×, target ≤ 1.5×) ${f.met ? 'ok' : 'MISSED'}`,
    );
    // One stream per connection: when a Check takes longer than connections / rate on average,
    // the rate is not reached and the latencies are those of a closed loop at a lower rate.
    const short = (
      [
        ['floor', f.floor],
        ['Portcullis', f.apiKey],
      ] as const
    ).filter(([, x]) => x.checksPerSecond < 0.95 * f.rate);
    if (short.length) {
      console.log(
        `  note: the fixed rate was not reached (${short.map(([n, x]) => `${n} ${Math.round(x.checksPerSecond)}/s`).join(', ')}): each connection waited for its previous Check, so read these latencies as measured at that rate`,
      );
    }
  }
  for (const w of r.workers) {
    console.log(
      `--workers ${w.workers}: ${w.checksPerSecond as number} Checks/s (API key) vs ${w.singleProcessChecksPerSecond as number} for one process just before (${(w.scaling as number).toFixed(2)}×); ` +
        `CPU ${w.cpuUsPerCheck as number} vs ${w.singleProcessCpuUsPerCheck as number} µs/Check; peak RSS ${w.peakRssMB as number} MB (all workers)`,
    );
  }
  const s = r.soak as
    | {
        minutes: number;
        achievedChecksPerSecond: number;
        rssStartMB: number;
        rssEndMB: number;
        rssChange: number;
        flat: boolean;
      }
    | undefined;
  if (s) {
    console.log(
      `Soak ${s.minutes} min at ${s.achievedChecksPerSecond} Checks/s: RSS ${s.rssStartMB} → ${s.rssEndMB} MB (${(s.rssChange * 100).toFixed(1)}%, target ±10%) ${s.flat ? 'ok' : 'MISSED'}`,
    );
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`bench failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(2);
  },
);
