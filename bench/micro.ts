// In-process cost of one Check without the network: lean decode -> App.check (decide, metrics,
// logs) -> encode, per scenario, in µs. Shows what Portcullis adds on top of grpc-js's own work.
// Usage: node --import tsx bench/micro.ts [iterations=50000]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { decodeCheckRequest } from '../src/envoy/codec/decoder.ts';
import { encodeCheckResponse } from '../src/envoy/codec/encoder.ts';
import type * as grpc from '@grpc/grpc-js';
import { toAuthzRequest, toCheckResponse, type CheckRequestMsg } from '../test/support/check-oracle.ts';
import { AUTHZ_SERVICE, loadAuthzPackageDefinition } from '../src/envoy/protos.ts';
import { App } from '../src/runtime/app.ts';
import { createLogger } from '../src/runtime/logger.ts';
import { Metrics } from '../src/runtime/metrics.ts';
import { prepareWorkspace } from './lib/setup.ts';
import { createPrivateKey } from 'node:crypto';
import { checkRequestObject, serializeCheckRequest } from './lib/payloads.ts';
import { signToken } from './lib/tokens.ts';
import { dpopClient, dpopConfig, dpopFrames } from './lib/dpop.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { median } from './lib/stats.ts';

// CPU time, not wall time: other processes on a shared machine then distort far less.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const N = Number(process.argv[2] ?? 50_000);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-micro-'));
const ws = await prepareWorkspace(dir, { grpc: 1, http: 2 });
// Logs go to a sink that only counts bytes: formatting and redaction are measured, not the disk.
let logBytes = 0;
const sink = new Writable({ write: (c, _e, cb) => ((logBytes += c.length), cb()) });
const app = await App.create({ configFile: ws.configFile, log: createLogger('info', sink), metrics: new Metrics() });
await new Promise((r) => setTimeout(r, 200));

const check = (loadAuthzPackageDefinition()[AUTHZ_SERVICE] as grpc.ServiceDefinition).Check;
const cases: Array<[string, Buffer]> = [
  [
    'api-key',
    serializeCheckRequest(
      checkRequestObject({ path: '/v1/orders/12345?expand=items', headers: { 'x-api-key': ws.apiKey } }),
    ),
  ],
  [
    'jwt-cached',
    serializeCheckRequest(
      checkRequestObject({
        path: '/v1/orders/12345?expand=items',
        headers: {
          authorization: `Bearer ${signToken(ws.rs256, { sub: 'user-cached', client_id: 'bench-web', scope: 'orders:read profile', jti: 'cached-1' })}`,
        },
      }),
    ),
  ],
  ['deny-no-credential', serializeCheckRequest(checkRequestObject({ path: '/v1/orders/12345?expand=items' }))],
  [
    'rate-limited',
    serializeCheckRequest(checkRequestObject({ path: '/v1/limited/x', headers: { 'x-api-key': ws.limitedApiKey } })),
  ],
];
for (const [name, bytes] of cases) {
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) encodeCheckResponse(await app.check(decodeCheckRequest(bytes)));
  };
  await run(5000);
  const t = [cpuMs()];
  for (let i = 0; i < N; i++) decodeCheckRequest(bytes);
  t.push(cpuMs());
  const req = decodeCheckRequest(bytes);
  for (let i = 0; i < N; i++) await app.check(req);
  t.push(cpuMs());
  const d = await app.check(req);
  for (let i = 0; i < N; i++) encodeCheckResponse(d);
  t.push(cpuMs());
  const us = (a: number, b: number) => (((t[b] - t[a]) * 1000) / N).toFixed(2).padStart(6);
  console.log(`${name.padEnd(20)} decode ${us(0, 1)} µs   check ${us(1, 2)} µs   encode ${us(2, 3)} µs`);
}
console.log(`(${N} iterations each; ${(logBytes / 1024).toFixed(0)} kB of logs formatted)`);

// Lean codec against the proto-loader path it replaced, interleaved in blocks so a busy machine
// affects both alike; medians.
{
  const bytes = cases[0][1];
  const allowD = await app.check(decodeCheckRequest(bytes));
  const denyD = await app.check(decodeCheckRequest(cases[1][1]));
  const fns: Record<string, () => unknown> = {
    'decode, lean': () => decodeCheckRequest(bytes),
    'decode, proto-loader': () => toAuthzRequest(check.requestDeserialize(bytes) as CheckRequestMsg),
    'encode allow, lean': () => encodeCheckResponse(allowD),
    'encode allow, proto-loader': () => check.responseSerialize(toCheckResponse(allowD)),
    'encode deny, lean': () => encodeCheckResponse(denyD),
    'encode deny, proto-loader': () => check.responseSerialize(toCheckResponse(denyD)),
  };
  const res: Record<string, number[]> = {};
  for (let round = 0; round < 15; round++) {
    for (const [k, f] of Object.entries(fns)) {
      const t = cpuMs();
      for (let i = 0; i < 5000; i++) f();
      (res[k] ??= []).push(((cpuMs() - t) * 1000) / 5000);
    }
  }
  for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(28)} ${median(v.slice(3)).toFixed(2)} µs`);
}

// Never-seen JWTs: a Check is asynchronous (the key lookup and the verified-token cache may wait),
// so run 64 at a time, as the server would have them in flight, and report throughput (wall) and
// the process's CPU per Check (main thread and any pool threads).
for (const key of [ws.rs256, ws.es256]) {
  const n = key.alg === 'RS256' ? 4000 : 10000;
  const pk = createPrivateKey(key.privatePem);
  const frames = Array.from({ length: n }, (_, i) =>
    serializeCheckRequest(
      checkRequestObject({
        path: '/v1/orders/1',
        headers: {
          authorization: `Bearer ${signToken(key, { sub: 'u', client_id: 'c', scope: 'orders:read', jti: `m-${i}` }, pk)}`,
        },
      }),
    ),
  );
  const t0 = performance.now();
  const c0 = cpuMs();
  let allowed = 0;
  for (let i = 0; i < n; i += 64) {
    const ds = await Promise.all(frames.slice(i, i + 64).map((f) => app.check(decodeCheckRequest(f))));
    allowed += ds.filter((d) => d.allowed).length;
  }
  const wall = performance.now() - t0;
  console.log(
    `jwt ${key.alg} never seen    ${Math.round((n / wall) * 1000)} Checks/s   CPU ${(((cpuMs() - c0) * 1000) / n).toFixed(1)} µs/Check   (${allowed}/${n} allowed)`,
  );
}
await app.close();

// DPoP (RFC 9449): a never-seen proof on each Check with the cached bound token, on an App with the
// bench's credentials.dpop, against the same cached JWT sent as Bearer; ES256 and RS256 proofs.
// The difference is what the proof costs in-process: its signature check plus the rest of it.
{
  const file = join(dir, 'dpop.yaml');
  const ports = { grpc: ws.grpcPort, http: ws.httpPort };
  writeFileSync(file, dpopConfig(readFileSync(ws.configFile, 'utf8'), ports, { grpc: 3, http: 4 }));
  const dpopApp = await App.create({ configFile: file, log: createLogger('info', sink), metrics: new Metrics() });
  const n = Math.min(N, 10_000);
  const path = '/v1/orders/12345?expand=items';
  const bearer = `Bearer ${signToken(ws.rs256, { sub: 'user-cached', client_id: 'bench-web', scope: 'orders:read', jti: 'cached-1' })}`;
  const body = (framed: Buffer) => framed.subarray(5);
  const sets: Array<[string, Buffer[]]> = [
    [
      'bearer, cached (baseline)',
      Array.from({ length: n }, (_, i) =>
        serializeCheckRequest(checkRequestObject({ path, headers: { authorization: bearer } }, i)),
      ),
    ],
    ['dpop ES256 proof', dpopFrames(dpopClient(ws.es256), path, n).map(body)],
    ['dpop RS256 proof', dpopFrames(dpopClient(ws.es256, 'RS256'), path, n).map(body)],
  ];
  for (const [name, frames] of sets) {
    for (const f of frames.slice(0, 500)) await dpopApp.check(decodeCheckRequest(f)); // warm up
    const c0 = cpuMs();
    let allowed = 0;
    for (let i = 500; i < frames.length; i += 64) {
      const ds = await Promise.all(frames.slice(i, i + 64).map((f) => dpopApp.check(decodeCheckRequest(f))));
      for (const d of ds) if (encodeCheckResponse(d) && d.allowed) allowed++;
    }
    const m = frames.length - 500;
    console.log(
      `${name.padEnd(26)} CPU ${(((cpuMs() - c0) * 1000) / m).toFixed(1)} µs/Check   (${allowed}/${m} allowed)`,
    );
  }
  await dpopApp.close();
}
