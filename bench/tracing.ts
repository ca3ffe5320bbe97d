// What tracing adds to one Check, in CPU µs (median of several runs): the span's start, the work
// run inside it, the decision attributes and the end, plus, with tracing on, the batch export
// (serialization and the HTTP request) to a collector stand-in in another process that reads and
// discards each request. The Check itself is not run: this is tracing's cost alone, for
// docs/tracing.md. Usage: node --import tsx bench/tracing.ts [checks per run=20000] [runs=5]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pino } from 'pino';
import { tracingSchema, type TracingConfigInput } from '../src/telemetry/config.ts';
import { TRACING_OFF, createTracing, type Tracing } from '../src/telemetry/tracing.ts';
import { median } from './lib/stats.ts';

const N = Number(process.argv[2] ?? 20_000);
const RUNS = Number(process.argv[3] ?? 5);

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

// The collector stand-in: answers every OTLP request with 200 and an empty body.
const sink = spawn(
  process.execPath,
  [
    '-e',
    `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': req.headers['content-type'] }).end()); })
      .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const [portLine] = (await once(sink.stdout, 'data')) as [Buffer];
const endpoint = `http://127.0.0.1:${portLine.toString().trim()}/v1/traces`;

const headers = {
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  ':path': '/v1/orders/12345',
  authorization: 'Bearer x',
};
const decision = {
  allowed: true,
  status: 200,
  reason: 'allowed',
  route: 'orders-api',
  identity: { method: 'jwt', clientId: 'bench-web', subject: 'user-1' },
};
const work = (x: number) => x + 1;
const childWork = async () => 1;
const checkWithChild = (t: Tracing) => () => t.withChildSpan('redis', { 'db.operation.name': 'EVALSHA' }, childWork);

const counts = { exported: 0, dropped: 0 };

async function run(t: Tracing, withChild: boolean, spansPerCheck: number): Promise<number> {
  const before = counts.exported + counts.dropped;
  const child = checkWithChild(t);
  const start = cpuUs();
  for (let i = 0; i < N; i++) {
    const span = t.startCheckSpan(headers);
    if (withChild) await span.run(child, undefined);
    else span.run(work, i);
    span.setDecision(decision);
    span.end();
    // Let the export timer and sockets run, as they do between requests.
    if ((i & 255) === 255) await new Promise((r) => setImmediate(r));
  }
  // Everything queued is exported (one batch at a time, as in service) before the clock stops.
  const deadline = Date.now() + 60_000;
  while (t.enabled && counts.exported + counts.dropped - before < N * spansPerCheck && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 5));
  await t.shutdown(60_000);
  return (cpuUs() - start) / N;
}

const log = pino({ level: 'silent' });
const scenarios: Array<[string, Omit<TracingConfigInput, 'enabled'> | null, boolean]> = [
  ['off', null, false],
  ['on, not sampled (ratio 0)', { sample_ratio: 0, parent_based: false }, false],
  ['on, ratio 1, http/protobuf', { protocol: 'http/protobuf' }, false],
  ['on, ratio 1, http/json', { protocol: 'http/json' }, false],
  ['on, ratio 1, protobuf, + 1 child span', { protocol: 'http/protobuf' }, true],
];
console.log(`${N} Checks per run, median of ${RUNS} runs, CPU µs per Check (tracing's share only)`);
for (const [name, cfg, withChild] of scenarios) {
  const samples: number[] = [];
  const dropped = counts.dropped;
  const sampled = cfg?.sample_ratio !== 0;
  for (let r = 0; r < RUNS + 1; r++) {
    const t = cfg
      ? await createTracing(
          tracingSchema.parse({ enabled: true, otlp_endpoint: endpoint, ...cfg, batch: { max_queue_size: 65536 } }),
          {},
          log,
          {
            onSpansDropped: (n) => (counts.dropped += n),
            onSpansExported: (n) => (counts.exported += n),
          },
        )
      : TRACING_OFF;
    const us = await run(t, withChild, sampled ? (withChild ? 2 : 1) : 0);
    if (r > 0) samples.push(us); // the first run warms up
  }
  const lost = counts.dropped - dropped;
  console.log(
    `${name.padEnd(40)} ${median(samples).toFixed(2).padStart(7)} µs${lost ? `   (${lost} spans dropped)` : ''}`,
  );
}
sink.kill();
