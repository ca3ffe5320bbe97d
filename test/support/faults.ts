// Fault injection for the hardening suites. These sit in front of (or instead of) a real
// dependency and make it fail the ways real ones do; the dependencies themselves stay real
// (oidc-provider, redis-server, the portcullis process).
//
//   startFaultyHttpFront  an HTTP hop in front of the IdP: pass, 5xx, slow, garbage, hang, reset
//   startTcpProxy         a TCP hop (e.g. in front of Redis): pass, blackhole, reset
//   spawnPortcullis       `node bin/portcullis.js serve` as a child process, logs to a file
//   Oracle / drive        traffic whose every answer is checked against a decision known in advance
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { authorizationClient } from '../../src/envoy/protos.ts';
import { applyEnvoy, envoyCheckRequest, type CheckResponseMsg, type EnvoyRequestInit } from './envoy.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// HTTP fault front

export type HttpFault =
  | { kind: 'pass' }
  | { kind: 'status'; status: number }
  | { kind: 'slow'; ms: number }
  | { kind: 'garbage'; body: string | Buffer; contentType?: string }
  | { kind: 'hang' }
  | { kind: 'reset' };

export interface FaultyHttpFront {
  /** Base URL of the front: same paths as the target. */
  readonly base: string;
  set(fault: HttpFault): void;
  /** Requests seen, and how many of them got a fault. */
  readonly counts: { requests: number; faulted: number };
  close(): Promise<void>;
}

/** Forwards to `target` unless a fault is set; only paths matching `paths` get the fault. */
export async function startFaultyHttpFront(target: string, opts: { paths?: RegExp } = {}): Promise<FaultyHttpFront> {
  const t = new URL(target);
  let fault: HttpFault = { kind: 'pass' };
  const counts = { requests: 0, faulted: 0 };
  const hung = new Set<ServerResponse>();
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const up = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    up.end(body);
  };
  const server: Server = createServer((req, res) => {
    counts.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const f = opts.paths && !opts.paths.test(req.url ?? '') ? ({ kind: 'pass' } as HttpFault) : fault;
      if (f.kind !== 'pass') counts.faulted++;
      const body = Buffer.concat(chunks);
      switch (f.kind) {
        case 'pass':
          return forward(req, res, body);
        case 'status':
          res.writeHead(f.status, { 'content-type': 'application/json' });
          return res.end('{"error":"server_error"}');
        case 'slow':
          return void setTimeout(() => forward(req, res, body), f.ms);
        case 'garbage':
          res.writeHead(200, { 'content-type': f.contentType ?? 'application/json' });
          return res.end(f.body);
        case 'hang':
          hung.add(res);
          res.on('close', () => hung.delete(res));
          return; // never answers
        case 'reset':
          return req.socket.resetAndDestroy();
      }
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set(f) {
      fault = f;
      // Ending a hang: requests already hanging stay hung (the client's timeout must end them).
    },
    counts,
    async close() {
      for (const res of hung) res.destroy();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TCP proxy

export type TcpFault = 'pass' | 'blackhole' | 'reset';

export interface TcpProxy {
  readonly port: number;
  /**
   * blackhole: connections stay open and nothing moves either way (a partition). Bytes are held,
   * not dropped: TCP retransmits, so what was sent arrives once the partition heals.
   * reset: every connection is reset, new ones too (the far side is gone).
   */
  set(mode: TcpFault): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: TcpFault = 'pass';
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const server = createTcpServer((client) => {
    client.on('error', () => {});
    if (mode === 'reset') return client.resetAndDestroy();
    const upstream = connect(targetPort, targetHost);
    upstream.on('error', () => client.destroy());
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (mode === 'blackhole') {
      client.pause();
      upstream.pause();
    }
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    set(m) {
      mode = m;
      for (const p of pairs) {
        if (m === 'reset') {
          p.client.resetAndDestroy();
          p.upstream.destroy();
        } else if (m === 'blackhole') {
          p.client.pause();
          p.upstream.pause();
        } else {
          p.client.resume();
          p.upstream.resume();
        }
      }
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// portcullis as a child process

const BIN = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url));

export interface PortcullisChild {
  proc: ChildProcess;
  grpcAddress: string;
  httpBase: string;
  logFile: string;
  /** Parsed log lines so far (re-reads the file). */
  logs(): Array<{ level: number; msg: string; [k: string]: unknown }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Logs go to a file, not a pipe: a pipe the test reads late would block pino's synchronous
 * writes and show up as event-loop stalls in the server.
 */
export async function spawnPortcullis(
  configFile: string,
  dir: string,
  opts: { env?: Record<string, string>; name?: string; nodeArgs?: string[] } = {},
): Promise<PortcullisChild> {
  const logFile = join(dir, `${opts.name ?? 'portcullis'}-${Date.now()}.log`);
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'serve', '--config', configFile], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs = () =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l) as { level: number; msg: string };
        } catch {
          return { level: 0, msg: l };
        }
      });
  const end = Date.now() + 30_000;
  for (;;) {
    const started = logs().find((l) => l.msg === 'portcullis started') as
      { grpc_port?: number; http_port?: number } | undefined;
    if (started) {
      return {
        proc,
        grpcAddress: `127.0.0.1:${started.grpc_port}`,
        httpBase: `http://127.0.0.1:${started.http_port}`,
        logFile,
        logs,
        exited,
        kill: (signal = 'SIGTERM') => void proc.kill(signal),
      };
    }
    if (proc.exitCode !== null || Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`portcullis did not start:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    }
    await sleep(50);
  }
}

/** Prometheus text -> value per series (`name` or `name{labels}` exactly as exposed). */
export async function scrape(httpBase: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${httpBase}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  stepMs = 50,
): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
  return Date.now() - start;
}

// ---------------------------------------------------------------------------------------------
// Correctness oracle

/** The decision a probe must get when nothing is failing. */
export interface Expected {
  allowed: boolean;
  /** 200 when allowed; the deny's HTTP status otherwise. */
  status: number;
  /** allowed: the x-auth-method and x-client-id the upstream must see (identity is part of correctness). */
  method?: string;
  clientId?: string;
}

export interface Probe {
  name: string;
  /** The request to send; undefined = nothing to send right now (e.g. a pool of fresh tokens paced or used up). */
  build(): EnvoyRequestInit | undefined;
  expect(): Expected;
}

/**
 * steady: every answer must be exactly correct. fault / recovery: an answer may also be a deny
 * (the dependency is down, so refusing is right), but never an allow that should not be.
 */
export type Phase = 'steady' | 'fault' | 'recovery';

interface ProbeStats {
  correct: number;
  denied: number;
  wrong: number;
  lastCorrectAt: number;
  lastIncorrectAt: number;
}

export class Oracle {
  correct = 0;
  /** Answers that were a deny instead of the expected decision while a fault was on, by status (or gRPC error). */
  readonly deniedDuringFault = new Map<string, number>();
  /** An allow that should not be (or with the wrong identity), or any non-correct answer in steady phase. */
  wrongAllows = 0;
  wrongDenies = 0;
  readonly wrongSamples: string[] = [];
  readonly perProbe = new Map<string, ProbeStats>();
  /** Probes that must stay exactly correct even while the fault is on (the design promises it). */
  steadfast = new Set<string>();
  latencyMaxMs = 0;

  get wrong(): number {
    return this.wrongAllows + this.wrongDenies;
  }
  get denied(): number {
    let n = 0;
    for (const v of this.deniedDuringFault.values()) n += v;
    return n;
  }
  get total(): number {
    return this.correct + this.denied + this.wrong;
  }

  private stats(name: string): ProbeStats {
    let s = this.perProbe.get(name);
    if (!s) this.perProbe.set(name, (s = { correct: 0, denied: 0, wrong: 0, lastCorrectAt: 0, lastIncorrectAt: 0 }));
    return s;
  }

  record(
    probe: string,
    exp: Expected,
    phase: Phase,
    got: { allowed: boolean; status: number; method?: string; clientId?: string } | { rpcError: string },
    detail = '',
  ): void {
    const s = this.stats(probe);
    const now = Date.now();
    if ('rpcError' in got) {
      // Envoy (failure_mode_allow: false) denies when the Check call fails.
      if (phase !== 'steady' && !this.steadfast.has(probe)) return this.deny(s, now, `rpc:${got.rpcError}`);
      return this.bad(
        s,
        now,
        false,
        `${probe} [${phase}]: gRPC error ${got.rpcError}, expected ${JSON.stringify(exp)}`,
      );
    }
    const correct = exp.allowed
      ? got.allowed &&
        (exp.method === undefined || got.method === exp.method) &&
        (exp.clientId === undefined || got.clientId === exp.clientId)
      : !got.allowed && got.status === exp.status;
    if (correct) {
      this.correct++;
      s.correct++;
      s.lastCorrectAt = now;
      return;
    }
    if (got.allowed)
      return this.bad(
        s,
        now,
        true,
        `${probe} [${phase}]: ALLOWED (${got.method}/${got.clientId}), expected ${JSON.stringify(exp)} ${detail}`,
      );
    if (phase !== 'steady' && !this.steadfast.has(probe)) return this.deny(s, now, String(got.status));
    this.bad(s, now, false, `${probe} [${phase}]: denied ${got.status}, expected ${JSON.stringify(exp)} ${detail}`);
  }

  private deny(s: ProbeStats, now: number, key: string) {
    this.deniedDuringFault.set(key, (this.deniedDuringFault.get(key) ?? 0) + 1);
    s.denied++;
    s.lastIncorrectAt = now;
  }

  private bad(s: ProbeStats, now: number, allow: boolean, sample: string) {
    if (allow) this.wrongAllows++;
    else this.wrongDenies++;
    s.wrong++;
    s.lastIncorrectAt = now;
    if (this.wrongSamples.length < 20) this.wrongSamples.push(sample);
  }

  /** Every probe answered correctly since `since`, and its latest answer was correct. */
  allCorrectSince(since: number, probes?: string[]): boolean {
    for (const name of probes ?? this.perProbe.keys()) {
      const s = this.perProbe.get(name);
      if (!s || s.lastCorrectAt <= since || s.lastIncorrectAt > s.lastCorrectAt) return false;
    }
    return true;
  }

  summary(label: string): string {
    const denied = [...this.deniedDuringFault].map(([k, v]) => `${k}:${v}`).join(' ') || '-';
    return `${label}: ${this.total} answers, correct ${this.correct}, denied-during-fault ${this.denied} (${denied}), wrong ${this.wrong} (allows ${this.wrongAllows}, denies ${this.wrongDenies}), max latency ${this.latencyMaxMs.toFixed(0)} ms`;
  }
}

export interface CheckTarget {
  check(req: unknown, deadlineMs: number): Promise<CheckResponseMsg>;
  close(): void;
}

export function checkTarget(address: string): CheckTarget {
  const Client = authorizationClient();
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: Function };
  return {
    check: (req, deadlineMs) =>
      new Promise((resolve, reject) =>
        client.Check(
          req,
          { deadline: Date.now() + deadlineMs },
          (err: grpc.ServiceError | null, res: CheckResponseMsg) => (err ? reject(err) : resolve(res)),
        ),
      ),
    close: () => client.close(),
  };
}

export interface Traffic {
  oracle: Oracle;
  phase: Phase;
  /** Switch where Checks go (a restarted process listens elsewhere). */
  target: CheckTarget;
  sent: number;
  /** Checks sent and not answered yet. */
  inFlight: number;
  stop(): Promise<Oracle>;
}

/**
 * Closed-loop traffic: `concurrency` workers take probes round robin, at most `ratePerSecond`
 * in total. A request whose send or answer falls in a non-steady phase is judged leniently.
 */
export function drive(opts: {
  target: CheckTarget;
  probes: Probe[];
  concurrency?: number;
  ratePerSecond?: number;
  deadlineMs?: number;
  oracle?: Oracle;
  /**
   * Judge by the phase at send only (a Check sent in steady phase must be answered correctly, even if
   * a fault starts meanwhile).
   */
  judgeBySendPhase?: boolean;
}): Traffic {
  const oracle = opts.oracle ?? new Oracle();
  const concurrency = opts.concurrency ?? 8;
  const interval = opts.ratePerSecond ? (1000 * concurrency) / opts.ratePerSecond : 0;
  const deadlineMs = opts.deadlineMs ?? 2000;
  let stopped = false;
  let next = 0;
  const t: Traffic = {
    oracle,
    phase: 'steady',
    target: opts.target,
    sent: 0,
    inFlight: 0,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      return oracle;
    },
  };
  const worker = async () => {
    while (!stopped) {
      const began = Date.now();
      let probe: Probe | undefined;
      let init: EnvoyRequestInit | undefined;
      for (let tries = 0; tries < opts.probes.length && !init; tries++) {
        probe = opts.probes[next++ % opts.probes.length];
        init = probe.build();
      }
      if (!probe || !init) {
        await sleep(5);
        continue;
      }
      const exp = probe.expect();
      const phaseAtSend = t.phase;
      const req = envoyCheckRequest(init);
      t.sent++;
      t.inFlight++;
      const judged = () => (phaseAtSend === 'steady' && !opts.judgeBySendPhase ? t.phase : phaseAtSend);
      try {
        const res = await t.target.check(req, deadlineMs);
        t.inFlight--;
        const out = applyEnvoy(req, res);
        const phase = judged();
        oracle.record(
          probe.name,
          exp,
          phase,
          {
            allowed: out.allowed,
            status: out.status,
            method: out.upstreamHeaders['x-auth-method'],
            clientId: out.upstreamHeaders['x-client-id'],
          },
          res.dynamic_metadata?.fields?.reason?.stringValue ?? '',
        );
      } catch (e) {
        t.inFlight--;
        const phase = judged();
        const code = (e as grpc.ServiceError).code;
        oracle.record(probe.name, exp, phase, { rpcError: code === undefined ? String(e) : grpc.status[code] });
      }
      const took = Date.now() - began;
      if (took > oracle.latencyMaxMs) oracle.latencyMaxMs = took;
      if (interval > took) await sleep(interval - took);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return t;
}

/**
 * A probe that sends each token of a pool once (a never-seen credential each time), paced. When
 * the pool runs dry it cycles through the tokens already sent (no longer fresh, still checked),
 * unless recycle is false (long runs, where the old tokens expire).
 */
export function freshTokenProbe(
  name: string,
  pool: string[],
  everyMs: number,
  exp: Expected,
  path = '/v1/orders/7',
  opts: { recycle?: boolean } = {},
): Probe & { remaining(): number } {
  const recycle = opts.recycle ?? true;
  let last = 0;
  const used: string[] = [];
  let i = 0;
  return {
    name,
    remaining: () => pool.length,
    build() {
      const now = Date.now();
      if (now - last < everyMs || (pool.length === 0 && (used.length === 0 || !recycle))) return undefined;
      last = now;
      let token: string;
      if (pool.length) used.push((token = pool.shift()!));
      else token = used[i++ % used.length];
      return { path, headers: { authorization: `Bearer ${token}` } };
    },
    expect: () => exp,
  };
}

export function fixedProbe(name: string, init: EnvoyRequestInit, exp: Expected | (() => Expected)): Probe {
  return { name, build: () => init, expect: typeof exp === 'function' ? exp : () => exp };
}

export const ALLOW = (method: string, clientId: string): Expected => ({ allowed: true, status: 200, method, clientId });
export const DENY = (status: number): Expected => ({ allowed: false, status });
