// `npm run bench:ab -- --b <checkout>`: this checkout's Portcullis (A) against another build (B),
// both at once on the same pinned CPU, each driven by its own h2load, for one scenario.
// Two identical builds paired this way agree far more closely than the floor pairs of `npm run
// bench` do, because they are the same program: the tool for measuring one change to the hot path.
// docs/performance.md, "A/B pairs".
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pinningFor, pinProcess } from './lib/cpu-pinning.ts';
import { connect, h2Check } from './lib/h2call.ts';
import { runGenerator } from './lib/generator.ts';
import { H2LOAD_INSTALL_HINT, h2loadVersion, runH2load } from './lib/h2load.ts';
import { framedCheckRequest } from './lib/payloads.ts';
import {
  buildCheckout,
  DIST_ENTRY,
  freePort,
  hasBuild,
  REPO_ROOT,
  SOURCE_ENTRY,
  startNode,
  waitUntil,
  type Proc,
} from './lib/processes.ts';
import { decisionMismatch, scenarios } from './lib/scenarios.ts';
import { newWorkdir, prepareWorkspace, type IntrospectionTarget } from './lib/setup.ts';
import { median } from './lib/stats.ts';
import { startOtlpSink, tracingSection } from './lib/otlp-sink.ts';

const { values: opt } = parseArgs({
  options: {
    b: { type: 'string' },
    scenario: { type: 'string', default: 'api-key' },
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    'b-env': { type: 'string', default: '' },
    'b-node-args': { type: 'string', default: '' },
    prime: { type: 'string', default: '0' },
    'prime-only': { type: 'string' },
    'prime-with': { type: 'string', default: '' },
    'prime-seconds': { type: 'string', default: '10' },
    pool: { type: 'string', default: '15000' },
    tracing: { type: 'string' },
    'tracing-protocol': { type: 'string', default: 'http/protobuf' },
    help: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  console.log(`npm run bench:ab -- [options]
  --b DIR              the other checkout (B) with its node_modules (default: this one, an A/A pair)
  --scenario ID        a scenario of npm run bench (default api-key); never-seen-token ones run
                       the bench's generator over a fresh pool per pair (--pool N tokens, default 15000);
                       opaque-cached (here or in --prime-with) starts the bench's identity provider
  --rounds N           A/B pairs (default 6)   --duration S   seconds per pair (default 5)
  --b-env K=V,...      environment for B only   --b-node-args "..."   node flags for B only
  --prime N            first N never-seen RS256 tokens to both servers, as the bench's never-seen
                       rows fill the verified-token cache before the other rows run (default 0)
  --prime-only a|b     prime only that one. With --prime the other side idles meanwhile, and a
                       server driven by anything first reads ~10% faster (warm-up); --prime-with
                       warms the other side as long on the measured scenario
  --prime-with ID,...  before the pairs, also drive these scenarios (deny-no-credential,
                       rate-limited, jwt-es256-new, ...) against the primed server(s),
                       --prime-seconds S each (default 10; never-seen-token rows send at most
                       --pool tokens): what a row of the full mix leaves behind for the next
  --tracing a|b|both   OpenTelemetry tracing on for that side, every Check sampled (ratio 1),
                       exported to an OTLP/HTTP sink in this process (--tracing-protocol
                       http/protobuf, the default, or http/json): \`--tracing b\` alone (an A/A
                       checkout) gives the cost of tracing a Check
Prints each pair's B/A Checks/s and their median: above 1 means B is faster.`);
  process.exit(0);
}
if (!h2loadVersion()) {
  console.error(H2LOAD_INSTALL_HINT);
  process.exit(2);
}
if (opt.tracing !== undefined && !['a', 'b', 'both'].includes(opt.tracing)) {
  console.error(`--tracing ${opt.tracing}: a, b or both`);
  process.exit(2);
}
if (!['http/protobuf', 'http/json'].includes(opt['tracing-protocol'])) {
  console.error(`--tracing-protocol ${opt['tracing-protocol']}: http/protobuf or http/json`);
  process.exit(2);
}
if (opt['prime-only'] !== undefined && opt['prime-only'] !== 'a' && opt['prime-only'] !== 'b') {
  console.error(`--prime-only ${opt['prime-only']}: a or b`);
  process.exit(2);
}
const pin = pinningFor(undefined);
if (!pin) {
  console.error('bench:ab needs taskset and two CPUs: the servers share one, the load generators the rest');
  process.exit(2);
}
pinProcess(pin.load);

const dirB = resolve(opt.b ?? REPO_ROOT);
// A and B run the same way, so the pair measures their code and nothing else: both compiled (dist/,
// as production runs) when both checkouts have the build, else both from their sources through tsx.
const compiled = hasBuild(REPO_ROOT) && hasBuild(dirB);
const entry = compiled ? DIST_ENTRY : SOURCE_ENTRY;
if (compiled) for (const checkout of new Set([REPO_ROOT, dirB])) buildCheckout(checkout);
console.log(
  compiled ? 'A and B run compiled (dist/, built now)' : `A and B run their sources through tsx (${dirB} has no build)`,
);
const dir = newWorkdir();
// The opaque-token row needs an identity provider to introspect at: the bench's (test/support/idp.ts),
// in this process, on the load CPUs; both servers then get the same introspection config.
const closers: Array<() => Promise<void>> = [];
let introspection: IntrospectionTarget | undefined;
let opaqueToken: string | undefined;
if ([opt.scenario, ...opt['prime-with'].split(',')].includes('opaque-cached')) {
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
}
const ws = await prepareWorkspace(dir, { grpc: await freePort(), http: await freePort() }, introspection);
const portsB = { grpc: await freePort(), http: await freePort() };
const configB = join(dir, 'b.yaml');
// With --tracing, that side exports a span per Check to a sink here (on the load CPUs, like h2load).
const sink = opt.tracing ? await startOtlpSink() : undefined;
if (sink) closers.push(() => sink.close());
const traced = (side: 'a' | 'b') =>
  sink && (opt.tracing === side || opt.tracing === 'both') ? tracingSection(sink.url, opt['tracing-protocol']) : '';
const configA = readFileSync(ws.configFile, 'utf8');
writeFileSync(
  configB,
  configA
    .replace(`127.0.0.1:${ws.grpcPort}`, `127.0.0.1:${portsB.grpc}`)
    .replace(`127.0.0.1:${ws.httpPort}`, `127.0.0.1:${portsB.http}`) + traced('b'),
);
writeFileSync(ws.configFile, configA + traced('a'));
if (sink && opt.tracing)
  console.log(
    `tracing on for ${opt.tracing === 'both' ? 'A and B' : opt.tracing.toUpperCase()}, ratio 1, ${opt['tracing-protocol']} to ${sink.url}`,
  );
const all = scenarios(ws, opaqueToken);
const scenario = all.find((s) => s.id === opt.scenario && (s.spec || s.frames));
if (!scenario)
  throw new Error(`--scenario ${opt.scenario}: not a scenario of npm run bench (see npm run bench -- --help)`);
if (scenario.server)
  throw new Error(
    `--scenario ${opt.scenario}: runs on a Portcullis of its own config (credentials.dpop) in npm run bench; bench:ab compares the main config only`,
  );
const payload = join(dir, 'payload.bin');
if (scenario.spec) writeFileSync(payload, framedCheckRequest(scenario.spec));
// Checked before any server starts: a typo should not cost a minute of priming.
const primeWith = opt['prime-with']
  .split(',')
  .filter(Boolean)
  .map((id) => {
    const s = all.find((x) => x.id === id && (x.spec || x.frames));
    if (!s)
      throw new Error(
        `--prime-with ${id}: not a scenario of npm run bench that runs here (see npm run bench -- --help)`,
      );
    if (!s.spec) return { id, scenario: s };
    const file = join(dir, `prime-${id}.bin`);
    writeFileSync(file, framedCheckRequest(s.spec));
    return { id, scenario: s, file };
  });

/** Every frame once, 64 at a time over one connection. */
async function sendAll(port: number, frames: Buffer[]): Promise<void> {
  const session = await connect(port);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < frames.length) await h2Check(session, frames[next++]);
    }),
  );
  session.close();
}

const start = (name: string, cwd: string, config: string, env: NodeJS.ProcessEnv, nodeArgs: string[]): Proc =>
  startNode(name, entry.script, ['serve', '--config', config], {
    logFile: join(dir, `${name}.log`),
    nodeArgs,
    env,
    cpus: pin.server,
    cwd,
    tsx: entry.tsx,
  });
const envB = Object.fromEntries(
  opt['b-env']
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const servers = [
  start('a', REPO_ROOT, ws.configFile, {}, []),
  start('b', dirB, configB, envB, opt['b-node-args'].split(' ').filter(Boolean)),
];
try {
  for (const [s, port] of [
    [servers[0], ws.httpPort],
    [servers[1], portsB.http],
  ] as const) {
    await waitUntil(
      `Portcullis ${s.name} to be ready (logs in ${dir})`,
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
      90_000,
      s,
    );
  }
  // Every h2load payload must get its expected decision first (as npm run bench checks): a
  // priming row that silently answered 503, say, would measure something else.
  for (const s of [scenario, ...primeWith.map((p) => p.scenario)].filter((x) => x.spec)) {
    for (const port of [ws.grpcPort, portsB.grpc]) {
      const session = await connect(port);
      try {
        for (let i = 0; i < (s.primeRequests ?? 0); i++) await h2Check(session, framedCheckRequest(s.spec!));
        const got = await h2Check(session, framedCheckRequest(s.spec!));
        const problem = decisionMismatch(s.expect, got.grpcStatus, got.response);
        if (problem)
          throw new Error(`preflight ${s.id} on ${port === ws.grpcPort ? 'A' : 'B'}: ${problem} (logs in ${dir})`);
      } finally {
        session.close();
      }
    }
  }
  const h2 = (port: number, seconds: number) =>
    runH2load({
      port,
      dataFile: payload,
      clients: 4,
      streams: 32,
      durationSeconds: seconds,
      warmupSeconds: 1,
      logFile: join(dir, `h2load-${port}.log`),
    });
  // h2load repeats one payload; never-seen-token scenarios get the bench's generator, both servers
  // the same fresh pool each pair (signed before the pair, on the load CPUs).
  const pool = Number(opt.pool);
  const pair = async (seconds: number) => {
    if (scenario.spec) return Promise.all([h2(ws.grpcPort, seconds), h2(portsB.grpc, seconds)]);
    const frames = await scenario.frames!(pool);
    const gen = (port: number) =>
      runGenerator({
        port,
        frames,
        threads: 1,
        connections: 4,
        streams: 32,
        warmupSeconds: 1,
        durationSeconds: seconds,
      });
    const [a, b] = await Promise.all([gen(ws.grpcPort), gen(portsB.grpc)]);
    if (a.exhausted || b.exhausted) console.log(`  the pool of ${pool} tokens ran out during the pair: raise --pool`);
    return [a, b];
  };
  const prime = Number(opt.prime);
  const only = opt['prime-only'];
  if (prime > 0) {
    const frames = await all.find((s) => s.id === 'jwt-rs256-new')!.frames!(prime);
    await Promise.all([
      only !== 'b' ? sendAll(ws.grpcPort, frames) : undefined,
      only !== 'a' ? sendAll(portsB.grpc, frames) : undefined,
    ]);
    console.log(`primed ${only ?? 'both'} with ${prime} never-seen RS256 tokens`);
  }
  // With --prime-only the other side gets as many seconds of the measured scenario meanwhile: a
  // server driven by anything first runs faster than one that was not (warm-up, whatever the
  // priming rows were), which would hide what the rows leave behind.
  const primeSeconds = Number(opt['prime-seconds']);
  for (const p of primeWith) {
    const drive = (port: number, file: string) =>
      runH2load({
        port,
        dataFile: file,
        clients: 4,
        streams: 32,
        durationSeconds: primeSeconds,
        warmupSeconds: 1,
        logFile: join(dir, `h2load-prime-${port}.log`),
      });
    // Never-seen-token rows: the generator, each primed side the same fresh pool (--pool tokens).
    const frames = p.file ? undefined : await p.scenario.frames!(pool);
    const row = (port: number) =>
      p.file
        ? drive(port, p.file)
        : runGenerator({
            port,
            frames: frames!,
            threads: 1,
            connections: 4,
            streams: 32,
            warmupSeconds: 1,
            durationSeconds: primeSeconds,
          });
    const other = scenario.spec ? payload : undefined;
    await Promise.all([
      only !== 'b' ? row(ws.grpcPort) : other && drive(ws.grpcPort, other),
      only !== 'a' ? row(portsB.grpc) : other && drive(portsB.grpc, other),
    ]);
    console.log(
      `primed ${only ?? 'both'} with ${opt['prime-seconds']} s of ${p.id}${only && other ? `, the other with as long of ${opt.scenario}` : ''}`,
    );
  }
  // Warm-up pair, not measured.
  await pair(3);
  const ratios: number[] = [];
  for (let round = 1; round <= Number(opt.rounds); round++) {
    const [a, b] = await pair(Number(opt.duration));
    ratios.push(b.rps / a.rps);
    console.log(`[${round}] A ${Math.round(a.rps)}/s  B ${Math.round(b.rps)}/s  B/A ${ratios.at(-1)!.toFixed(3)}`);
  }
  console.log(
    `${opt.scenario}: B/A ${median(ratios).toFixed(3)} (pairs ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}); A = ${REPO_ROOT}, B = ${dirB}`,
  );
  if (sink) console.log(`OTLP sink: ${sink.requests} export requests, ${(sink.bytes / 1e6).toFixed(1)} MB`);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  for (const close of closers) await close();
}
