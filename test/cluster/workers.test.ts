// `portcullis serve --workers 2` as a real process tree: both workers answer Checks on the one
// port, /metrics (scraped from whichever worker) counts every worker's decisions, a worker that
// dies is replaced, and SIGTERM stops the primary and every worker.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationClient } from '../../src/envoy/protos.ts';
import { BIN } from '../support/cli.ts';
import { tempDir } from '../support/service.ts';

let child: ChildProcess;
let logs = '';
let grpcPort = 0;
let httpPort = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 45_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; logs:\n${logs}`);
    await sleep(100);
  }
}

const logLines = () =>
  logs
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Worker pids: children of the primary started by cluster.fork (they carry PORTCULLIS_WORKER). */
function workerPids(): number[] {
  const out: number[] = [];
  for (const t of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)) {
    try {
      if (
        readFileSync(`/proc/${t}/environ`, 'utf8')
          .split('\0')
          .some((e) => e.startsWith('PORTCULLIS_WORKER='))
      )
        out.push(Number(t));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** A Check on its own connection (a fresh subchannel), so connections spread over the workers. */
async function checkOnNewConnection(path: string): Promise<{ status?: { code?: number } }> {
  const Client = authorizationClient();
  const c = new Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as grpc.Client & { Check: Function };
  try {
    return await new Promise((resolve, reject) =>
      c.Check(
        {
          attributes: {
            request: { http: { method: 'GET', path, host: 'api.example.com', headers: { 'x-request-id': 'r' } } },
          },
        },
        { deadline: Date.now() + 10_000 },
        (err: Error | null, res: { status?: { code?: number } }) => (err ? reject(err) : resolve(res)),
      ),
    );
  } finally {
    c.close();
  }
}

async function decisionsTotal(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('portcullis_decisions_total{'))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

beforeAll(async () => {
  const dir = tempDir();
  const config = join(dir, 'portcullis.yaml');
  writeFileSync(
    config,
    `server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
  shutdown_grace_seconds: 2
logging: { level: info }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
`,
  );
  child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (logs += d));
  child.stderr!.on('data', (d) => (logs += d));
  // Port 0 under node:cluster: the primary picks one port and every worker shares it.
  const ready = await until('two workers ready', () => {
    const r = logLines().filter((l) => l.msg === 'ready: serving Checks');
    return r.length >= 2 && r;
  });
  grpcPort = ready[0].grpc_port as number;
  httpPort = ready[0].http_port as number;
  expect(ready[1].grpc_port).toBe(grpcPort);
  expect(ready[0].pid).not.toBe(ready[1].pid);
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    for (const pid of workerPids()) process.kill(pid, 'SIGKILL');
  }
});

describe('serve --workers 2', () => {
  it('both workers answer Checks on the shared port, and /metrics counts all of them', async () => {
    expect(workerPids()).toHaveLength(2);
    const before = await decisionsTotal();
    // Denied Checks (no route) are logged with the worker's pid: connections land on both workers.
    for (let i = 0; i < 6; i++) expect((await checkOnNewConnection('/nowhere')).status?.code).toBe(7);
    for (let i = 0; i < 4; i++) expect((await checkOnNewConnection('/public/x')).status?.code ?? 0).toBe(0);
    const pids = new Set(
      logLines()
        .filter((l) => l.msg === 'denied')
        .map((l) => l.pid),
    );
    expect(pids.size).toBe(2);
    // Every scrape (landing on either worker) reports the sum over both workers.
    for (let i = 0; i < 4; i++) expect(await decisionsTotal()).toBe(before + 10);
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(text).toMatch(/^portcullis_ready 2$/m);
  });

  it('a worker that dies is replaced, and Checks keep being answered', async () => {
    const [victim, other] = workerPids();
    process.kill(victim, 'SIGKILL');
    await until('a replacement worker', () => {
      const now = workerPids();
      return now.length === 2 && !now.includes(victim) && now.includes(other);
    });
    expect(logs).toContain('exited unexpectedly; starting a new one');
    await until(
      'the replacement to be ready',
      () => logLines().filter((l) => l.msg === 'ready: serving Checks').length >= 3,
    );
    for (let i = 0; i < 4; i++) expect((await checkOnNewConnection('/public/x')).status?.code ?? 0).toBe(0);
  });

  it('SIGTERM stops every worker, then the primary exits 0', async () => {
    const workers = workerPids();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
    expect(logLines().filter((l) => l.msg === 'stopped').length).toBeGreaterThanOrEqual(3);
  });
});

describe('serve --workers with credentials.dpop', () => {
  it('without a redis section is refused at start (exit 2): a per-process replay cache would let replays through', () => {
    const dir = tempDir();
    const config = join(dir, 'portcullis.yaml');
    writeFileSync(
      config,
      `credentials:
  jwt: [{ issuer: "https://idp.example", audiences: [api], jwks_file: jwks.json }]
  dpop: {}
routes:
  - { name: orders, match: { path_prefix: /v1 }, auth: [jwt] }
`,
    );
    writeFileSync(join(dir, 'jwks.json'), '{"keys":[]}');
    const r = spawnSync(process.execPath, [BIN, 'serve', '--config', config, '--workers', '2'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/credentials\.dpop: without a redis section the DPoP replay cache is per process/);
  });
});
