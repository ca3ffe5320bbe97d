// Drives a server with h2load (nghttp2-client) and reads its summary and per-request log.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { CHECK_PATH } from './payloads.ts';
import { percentiles } from './stats.ts';

export interface LoadResult {
  requests: number;
  seconds: number;
  /** Completed Checks per second over the measured period. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests h2load counted as failed or errored (HTTP level; gRPC errors are checked via metrics). */
  failed: number;
  /** Server CPU µs per Check, when measured (bench/run.ts withCpu). */
  cpuUsPerCheck?: number;
}

export const H2LOAD_INSTALL_HINT =
  "h2load is not installed. It comes with Debian/Ubuntu's nghttp2-client: `sudo apt-get install -y nghttp2-client` " +
  '(macOS: `brew install nghttp2`). .ci/run installs it on CI.';

export function h2loadVersion(): string | undefined {
  try {
    return execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

export interface H2loadOptions {
  port: number;
  dataFile: string;
  clients: number;
  streams: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Requests per second per client (fixed-rate mode). */
  rpsPerClient?: number;
  logFile: string;
}

export async function runH2load(o: H2loadOptions): Promise<LoadResult> {
  const args = [
    '-c',
    String(o.clients),
    '-m',
    String(o.streams),
    '-t',
    '1',
    '-D',
    String(o.durationSeconds),
    '--warm-up-time',
    String(o.warmupSeconds),
    '-d',
    o.dataFile,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    '--log-file',
    o.logFile,
    ...(o.rpsPerClient ? ['--rps', String(o.rpsPerClient)] : []),
    `http://127.0.0.1:${o.port}${CHECK_PATH}`,
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (c) => (text += c));
    p.stderr.on('data', (c) => (text += c));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}:\n${text}`))));
  });
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    out,
  );
  if (!finished || !reqs) throw new Error(`cannot read h2load output:\n${out}`);
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const latencies = readLatencies(o.logFile);
  rmSync(o.logFile, { force: true });
  const [p50, p99] = percentiles(latencies, [50, 99]);
  return {
    requests: Number(reqs[4]),
    seconds,
    rps: Number(finished[3]),
    p50Ms: p50,
    p99Ms: p99,
    failed: Number(reqs[5]) + Number(reqs[6]),
  };
}

/** h2load --log-file: "start_us\tstatus\tduration_us" per request. */
function readLatencies(file: string): Float64Array {
  const text = readFileSync(file, 'utf8');
  const out = new Float64Array(text.length / 10);
  let n = 0;
  let lineStart = 0;
  while (lineStart < text.length) {
    let end = text.indexOf('\n', lineStart);
    if (end === -1) end = text.length;
    const tab = text.lastIndexOf('\t', end);
    if (tab > lineStart) out[n++] = Number(text.slice(tab + 1, end)) / 1000;
    lineStart = end + 1;
  }
  return out.slice(0, n);
}
