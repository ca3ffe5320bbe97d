// Load generator for payloads that must differ on every request (never-seen tokens), which h2load
// cannot do: raw node:http2 clients keep `streams` Checks in flight on each of `connections`
// connections, each request taking the next pre-built frame. Runs in a worker thread.
import * as http2 from 'node:http2';
import { parentPort, workerData } from 'node:worker_threads';
import { GRPC_HEADERS } from './h2call.ts';

export interface GeneratorJob {
  port: number;
  connections: number;
  streams: number;
  warmupSeconds: number;
  durationSeconds: number;
  frames: Uint8Array[];
}

/** Sent when the measured period starts and ends, so the caller can read server CPU over exactly it. */
export type GeneratorEvent = { event: 'measuring' } | { event: 'stopped' };

export interface GeneratorResult {
  requests: number;
  seconds: number;
  errors: number;
  nonOk: number;
  /** Milliseconds, measured requests only. */
  latencies: Float64Array;
  exhausted: boolean;
}

const job = workerData as GeneratorJob;
let next = 0;
let measuring = false;
let stopped = false;
let exhausted = false;
let measuredStart = 0;
let measuredEnd = 0;
let count = 0;
let errors = 0;
let nonOk = 0;
// Room for 60k Checks/s, well above what one node:http2 client thread can drive.
const latencies = new Float64Array(Math.ceil(60_000 * job.durationSeconds));
let inFlight = 0;

/** Each frame is sent once: a token never repeats. */
function take(): Uint8Array | undefined {
  if (next >= job.frames.length) {
    exhausted = true;
    return undefined;
  }
  return job.frames[next++];
}

function fire(session: http2.ClientHttp2Session): void {
  if (stopped) return;
  const frame = take();
  if (!frame) return finishSoon();
  const t0 = performance.now();
  const counted = measuring;
  inFlight++;
  const req = session.request(GRPC_HEADERS);
  let status = '';
  req.on('response', (h) => {
    if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
  });
  req.on('trailers', (t) => {
    status = String(t['grpc-status']);
  });
  req.on('data', () => {});
  req.on('error', () => {
    errors++;
  });
  req.on('close', () => {
    inFlight--;
    if (counted && measuring) {
      if (count < latencies.length) latencies[count] = performance.now() - t0;
      count++;
      if (status !== '0') nonOk++;
    }
    fire(session);
  });
  req.end(frame);
}

function finishSoon(): void {
  if (stopped) return;
  stopped = true;
  measuredEnd = performance.now();
  measuring = false;
  parentPort!.postMessage({ event: 'stopped' } satisfies GeneratorEvent);
  if (!measuredStart) count = 0;
  const wait = () => (inFlight > 0 ? setTimeout(wait, 5) : done());
  wait();
}

function done(): void {
  for (const s of sessions) s.close();
  const result: GeneratorResult = {
    requests: count,
    // Zero when the frames ran out before the warm-up ended: nothing was measured.
    seconds: measuredStart ? (measuredEnd - measuredStart) / 1000 : 0,
    errors,
    nonOk,
    latencies: latencies.slice(0, Math.min(count, latencies.length)),
    exhausted,
  };
  parentPort!.postMessage(result);
}

const sessions: http2.ClientHttp2Session[] = [];
let connected = 0;
for (let i = 0; i < job.connections; i++) {
  const s = http2.connect(`http://127.0.0.1:${job.port}`, { settings: { initialWindowSize: 1 << 20 } });
  sessions.push(s);
  s.on('error', () => {
    errors++;
  });
  s.once('connect', () => {
    if (++connected === job.connections) start();
  });
}

function start(): void {
  setTimeout(() => {
    measuring = true;
    measuredStart = performance.now();
    parentPort!.postMessage({ event: 'measuring' } satisfies GeneratorEvent);
    setTimeout(finishSoon, job.durationSeconds * 1000);
  }, job.warmupSeconds * 1000);
  for (const s of sessions) for (let j = 0; j < job.streams; j++) fire(s);
}
