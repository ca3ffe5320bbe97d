// Fault suite, process side, against a real `portcullis serve` process:
//   - config reloads with broken files (YAML syntax error, schema error, unset ${env:}, empty,
//     truncated mid-write), by SIGHUP and by the file watcher: each rejected whole, and every
//     answer stays exactly correct on the previous config; then a good file takes effect;
//   - SIGTERM mid-load, with Checks in flight (fresh opaque tokens behind a slow introspection
//     hop): every Check sent before the signal is answered correctly, the process exits 0 within
//     the grace period, and a replacement (what an orchestrator starts) serves correctly.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DENY, checkTarget, drive, scrape, sleep, spawnPortcullis, waitUntil, type Probe } from '../support/faults.ts';
import { idpProbes, startIdpWorld, type IdpWorld } from './fault-fixture.ts';
import { FAULT_MS, FAULT_RATE, RECOVERY_TIMEOUT_MS, STEADY_MS, results, runFault } from './fault-run.ts';

let w: IdpWorld;
let replacement: Awaited<ReturnType<typeof spawnPortcullis>> | undefined;

beforeAll(async () => {
  w = await startIdpWorld();
}, 120_000);
afterAll(async () => {
  if (replacement && replacement.proc.exitCode === null) {
    replacement.kill('SIGKILL');
    await replacement.exited;
  }
  await w?.close();
});

const configFile = () => join(w.dir, 'portcullis.yaml');
const failures = async () =>
  (await scrape(w.portcullis.httpBase)).get('portcullis_config_reloads_total{result="failure"}') ?? 0;

describe('process-level faults under traffic', () => {
  it('config reloads with broken files are rejected whole; every answer stays exact on the old config; a good file then takes effect', async () => {
    const p = await idpProbes(w, (FAULT_MS + 2 * STEADY_MS) / 1000 + 15);
    const good = readFileSync(configFile(), 'utf8');
    let newConfig = false;
    const extraRoute: Probe = {
      name: 'route-added-by-reload',
      build: () => ({ path: '/v1/extra/1' }),
      expect: () => (newConfig ? { allowed: true, status: 200 } : DENY(403)),
    };
    const broken: Array<[string, string]> = [
      ['YAML syntax error', good.replace('routes:', 'routes: [ { name: "x"')],
      ['schema error', good.replace('auth: [jwt, oauth2, api-key]', 'auth: [jwt, kerberos]')],
      ['unset ${env:}', good.replace('client_secret:', 'client_secret: ${env:PORTCULLIS_SURELY_UNSET_SECRET} #')],
      ['empty file', ''],
      // Cut inside a route's flow mapping. (A cut that happens to leave valid YAML, e.g. just
      // before routes:, is a valid config and cannot be told from an edit: write configs atomically.)
      ['truncated mid-write', good.slice(0, good.indexOf('path_prefix: /v1/orders }') + 15)],
    ];
    const probes = [...p.probes, extraRoute];
    let rejected = 0;
    const restore = () => {
      writeFileSync(configFile(), good);
      w.portcullis.kill('SIGHUP');
    };
    const { oracle } = await runFault('config reload with broken files', {
      target: w.target,
      probes,
      // The old config keeps serving: nothing may change, for any probe.
      steadfast: probes.map((x) => x.name).filter((n) => n !== 'route-added-by-reload'),
      inject: async () => {},
      during: async () => {
        for (const [i, [what, text]] of broken.entries()) {
          const before = await failures();
          writeFileSync(configFile(), text);
          // Alternate: SIGHUP, or let the file watcher find the change.
          if (i % 2 === 0) w.portcullis.kill('SIGHUP');
          await waitUntil(async () => (await failures()) > before, 10_000, `reload of ${what} rejected`).catch((e) => {
            restore();
            throw e;
          });
          rejected++;
          await sleep(Math.max(200, FAULT_MS / broken.length));
        }
      },
      heal: async () => {
        newConfig = true;
        writeFileSync(
          configFile(),
          good.replace('routes:', 'routes:\n  - { name: extra, match: { path_prefix: /v1/extra }, public: true }'),
        );
        w.portcullis.kill('SIGHUP');
      },
    });
    expect(rejected).toBe(broken.length);
    expect(oracle.perProbe.get('route-added-by-reload')!.correct).toBeGreaterThan(0);
    expect(w.portcullis.proc.exitCode).toBeNull();
    const logs = w.portcullis.logs();
    expect(logs.filter((l) => l.msg.startsWith('config reload rejected')).length).toBeGreaterThanOrEqual(broken.length);
    // The rejection names the file and says what is wrong, without echoing secrets.
    expect(JSON.stringify(logs)).not.toContain('gateway-secret');
    restore();
  }, 300_000);

  it('SIGTERM mid-load: Checks in flight are answered correctly, the process exits 0 within the grace period; a replacement serves', async () => {
    // Fresh opaque tokens wait 500 ms on introspection: there are always Checks in flight.
    w.introspectionFront.set({ kind: 'slow', ms: 500 });
    const p = await idpProbes(w, (2 * STEADY_MS) / 1000 + 6, 50);
    const traffic = drive({
      target: w.target,
      probes: p.probes,
      concurrency: 24,
      ratePerSecond: FAULT_RATE,
      judgeBySendPhase: true,
    });
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drainMs: number;
    let inFlightAtSignal: number;
    let recoveryMs: number;
    try {
      await sleep(STEADY_MS);
      // Checks sent from here on may meet a closed server (Envoy denies those); earlier ones may not.
      traffic.phase = 'fault';
      await sleep(20);
      inFlightAtSignal = traffic.inFlight;
      const signalled = Date.now();
      w.portcullis.kill('SIGTERM');
      exit = await Promise.race([w.portcullis.exited, sleep(15_000).then(() => undefined)]);
      drainMs = Date.now() - signalled;
      // The orchestrator starts a new one.
      traffic.phase = 'recovery';
      const healedAt = Date.now();
      w.introspectionFront.set({ kind: 'pass' });
      replacement = await spawnPortcullis(configFile(), w.dir, { name: 'replacement' });
      const old = traffic.target;
      traffic.target = checkTarget(replacement.grpcAddress);
      old.close();
      await waitUntil(() => traffic.oracle.allCorrectSince(healedAt), RECOVERY_TIMEOUT_MS, 'replacement serving');
      recoveryMs = Date.now() - healedAt;
      traffic.phase = 'steady';
      await sleep(STEADY_MS);
    } finally {
      await traffic.stop();
      traffic.target.close();
      w.introspectionFront.set({ kind: 'pass' });
    }
    const o = traffic.oracle;
    const line = `${o.summary('SIGTERM mid-load')}, ${inFlightAtSignal} in flight at SIGTERM, exit ${exit?.code} after ${drainMs} ms, replacement serving in ${recoveryMs} ms`;
    console.log(line);
    results.push({ label: 'SIGTERM mid-load', line });
    expect(o.wrongSamples).toEqual([]);
    expect(o.wrong).toBe(0);
    expect(inFlightAtSignal).toBeGreaterThan(0);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(drainMs).toBeLessThan(10_000 + 2000);
    expect(recoveryMs).toBeGreaterThanOrEqual(0);
  }, 300_000);
});
