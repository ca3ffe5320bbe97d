// `portcullis serve` as a real process: SIGTERM drains (health NOT_SERVING first, in-flight Checks
// finish, exit within the grace period); SIGHUP and file changes reload the config, and a bad file is
// rejected whole while the previous config keeps serving.
// In-flight Checks are made slow by a delaying proxy in front of the real oidc-provider's
// introspection endpoint (the network is slow, the IdP is real).
import { writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';
import { tempDir } from '../support/service.ts';
import { clients } from './support/grpc-clients.ts';
import { killAll, startPortcullis, type PortcullisProcess } from './support/portcullis-process.ts';

let idp: TestIdp;
let proxy: Server;
let proxyBase: string;
let delayMs = 0;
let proxied = 0;
const running: PortcullisProcess[] = [];

/** Forwards to the IdP after `delayMs`. */
function startDelayingProxy(target: URL): Promise<Server> {
  const server = createServer((req, res) => {
    proxied++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      setTimeout(() => {
        const up = request(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(Buffer.concat(chunks));
      }, delayMs),
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const configYaml = (opts: { grace: number; extraRoutes?: string }) => `
server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
  shutdown_grace_seconds: ${opts.grace}
logging: { level: info }
credentials:
  introspection:
    endpoint: ${proxyBase}${new URL(idp.introspectionEndpoint).pathname}
    allow_http: true
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    timeout_ms: 8000
routes:
  - { name: api, match: { path_prefix: /api }, auth: [oauth2] }
${opts.extraRoutes ?? ''}`;

function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, yaml);
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

beforeAll(async () => {
  idp = await startIdp();
  proxy = await startDelayingProxy(new URL(idp.introspectionEndpoint));
  proxyBase = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});
afterAll(async () => {
  killAll(running);
  proxy?.close();
  await idp?.close();
});

describe('SIGTERM', () => {
  it('turns health NOT_SERVING first, finishes the in-flight Check, and exits 0 within the grace period', async () => {
    const p = await startPortcullis(writeConfig(tempDir(), configYaml({ grace: 8 })));
    running.push(p);
    const c = clients(`127.0.0.1:${p.grpcPort}`);
    const token = await idp.opaqueAccessToken('orders:read');
    const events: string[] = [];
    const watch = c.watch();
    await until(() => watch.statuses.includes('SERVING'), 5000);
    watch.call.on('data', (m: { status: string }) => events.push(`health:${m.status}`));

    delayMs = 1500;
    const before = proxied;
    const inflight = c.check('/api/items', { authorization: `Bearer ${token}` }).then((r) => {
      events.push('check:done');
      return r;
    });
    await until(() => proxied > before, 5000); // the Check is now waiting on introspection
    const t0 = Date.now();
    p.kill('SIGTERM');

    const res = await inflight;
    const { code } = await p.exited;
    const took = Date.now() - t0;
    delayMs = 0;
    c.close();

    expect(res.status?.code ?? 0).toBe(0); // the in-flight Check was answered, and allowed
    expect(events[0]).toBe('health:NOT_SERVING'); // Envoy sees NOT_SERVING before the drain completes
    expect(events).toContain('check:done');
    expect(code).toBe(0);
    expect(took).toBeLessThan(6000); // the Check took ~1.5 s; waiting out the 8 s grace would be a bug
    expect(took).toBeGreaterThanOrEqual(1000); // it did wait for the Check
    expect(p.logs.map((l) => l.msg)).toContain('stopped');
  });

  it('after the grace period closes what is left (the caller gets an error, never an allow) and exits', async () => {
    const p = await startPortcullis(writeConfig(tempDir(), configYaml({ grace: 1 })));
    running.push(p);
    const c = clients(`127.0.0.1:${p.grpcPort}`);
    const token = await idp.opaqueAccessToken('orders:read');
    delayMs = 6000;
    const before = proxied;
    const inflight = c.check('/api/items', { authorization: `Bearer ${token}` }).then(
      (r) => ({ ok: true as const, r }),
      (e: { code?: number }) => ({ ok: false as const, code: e.code }),
    );
    await until(() => proxied > before, 5000);
    const t0 = Date.now();
    p.kill('SIGTERM');
    const outcome = await inflight;
    const { code } = await p.exited;
    const took = Date.now() - t0;
    delayMs = 0;
    c.close();

    expect(outcome.ok).toBe(false); // Envoy turns a failed Check into status_on_error (503)
    expect(code).toBe(0);
    expect(took).toBeLessThan(4500); // grace 1 s; the Check alone would hold it 6 s
    expect(p.logs.map((l) => l.msg)).toContain('grace period over; closing remaining calls');
  });
});

describe('config reload', () => {
  let p: PortcullisProcess;
  let file: string;
  let c: ReturnType<typeof clients>;
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${p.httpPort}/metrics`)).text();
    return text.split('\n').find((l) => l.startsWith(name)) ?? '';
  };

  beforeAll(async () => {
    file = writeConfig(tempDir(), configYaml({ grace: 1 }));
    p = await startPortcullis(file);
    running.push(p);
    c = clients(`127.0.0.1:${p.grpcPort}`);
  });
  afterAll(() => c?.close());

  it('SIGHUP applies a good file', async () => {
    const denied = await c.check('/status');
    expect(denied.denied_response?.status?.code).toBe('Forbidden'); // no route: default deny
    writeFileSync(
      file,
      configYaml({ grace: 1, extraRoutes: '  - { name: status, match: { path: /status }, public: true }\n' }),
    );
    p.kill('SIGHUP');
    await p.waitForLog(/^config reloaded$/);
    expect((await c.check('/status')).status?.code ?? 0).toBe(0);
    expect(await metric('portcullis_config_reloads_total{result="success"}')).toMatch(/ [1-9]\d*$/);
  });

  it('SIGHUP with a bad file: rejected whole, the previous config keeps serving, the operator is told what is wrong', async () => {
    // A good change (a new public route) next to a typo: neither may apply.
    writeFileSync(
      file,
      configYaml({
        grace: 1,
        extraRoutes:
          '  - { name: status, match: { path: /status }, public: true }\n  - { name: extra, match: { path: /extra }, public: true, scope: [x] }\n',
      }),
    );
    p.kill('SIGHUP');
    const line = await p.waitForLog(/^config reload rejected/);
    expect(JSON.stringify(line.problems)).toMatch(/routes\[2\]/);
    expect((await c.check('/status')).status?.code ?? 0).toBe(0);
    expect((await c.check('/extra')).denied_response?.status?.code).toBe('Forbidden');
    expect(await metric('portcullis_config_reloads_total{result="failure"}')).toMatch(/ [1-9]\d*$/);
    expect(await c.healthCheck()).toBe('SERVING');
    // The process is still the same one: nothing restarted.
    expect(p.proc.exitCode).toBeNull();
  });

  it('a reload that changes the listeners applies the rest and says a restart is needed for them', async () => {
    const moved = configYaml({
      grace: 1,
      extraRoutes: '  - { name: moved, match: { path: /moved }, public: true }\n',
    }).replace('grpc: { address: "127.0.0.1:0" }', 'grpc: { address: "127.0.0.1:1" }');
    writeFileSync(file, moved);
    p.kill('SIGHUP');
    await p.waitForLog(/^server\.grpc \/ server\.http changed/);
    expect((await c.check('/moved')).status?.code ?? 0).toBe(0); // same listener, new routes
  });

  it('a changed file is picked up without a signal', async () => {
    writeFileSync(
      file,
      configYaml({ grace: 1, extraRoutes: '  - { name: later, match: { path: /later }, public: true }\n' }),
    );
    // The poll interval is 2 s: wait for the effect itself (earlier writes also cause reloads).
    const end = Date.now() + 8000;
    while ((await c.check('/later')).status?.code !== undefined && Date.now() < end) await sleep(100);
    expect((await c.check('/later')).status?.code ?? 0).toBe(0);
    expect((await c.check('/status')).denied_response?.status?.code).toBe('Forbidden');
  });
});
