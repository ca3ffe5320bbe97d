// Fault suite, identity provider side, against a real `portcullis serve` process:
//   - the IdP killed and restarted (JWKS and introspection both gone), then a key rotation;
//   - the JWKS endpoint answering 500, slow (past fetch_timeout_ms), and garbage, while the IdP
//     rotates its signing key (tokens with the new kid need a refetch that keeps failing);
//   - the introspection endpoint hanging past the timeout (then 500, then resetting connections).
// Every answer is judged against the decision known in advance (test/support/faults.ts Oracle):
// correct, or a deny while the fault lasts — never an allow that should not be. What the design
// says must keep working during the fault (cached keys, last good JWKS, cached introspection
// answers) is held to exact correctness ("steadfast"). Then the service must recover by itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitUntil } from '../support/faults.ts';
import { NEEDS_NO_IDP, idpProbes, kidOf, startIdpWorld, type IdpWorld } from './fault-fixture.ts';
import { FAULT_MS, STEADY_MS, runFault } from './fault-run.ts';

let w: IdpWorld;
// Fresh-token pools last the whole run plus a recovery allowance.
const poolSeconds = (FAULT_MS + 2 * STEADY_MS) / 1000 + 8;

beforeAll(async () => {
  w = await startIdpWorld();
}, 120_000);
afterAll(async () => w?.close());

/**
 * Rotates the IdP's signing key and fills `pool` with tokens under the new kid (a few now, the rest in
 * the background).
 */
async function mintNewKid(pool: string[], n: number): Promise<void> {
  const kid = await w.idp.rotateKeys();
  for (let i = 0; i < 5; i++) pool.push(await w.idp.jwtAccessToken('orders:read'));
  if (kidOf(pool[0]) !== kid) throw new Error('rotation did not take');
  void (async () => {
    for (let i = 5; i < n; i++) pool.push(await w.idp.jwtAccessToken('orders:read'));
  })().catch(() => {});
}

describe('identity-provider faults under traffic', () => {
  it('IdP killed and restarted: cached keys and answers keep serving, the rest denies, then recovers (and picks up a rotated key)', async () => {
    const p = await idpProbes(w, poolSeconds);
    const { oracle } = await runFault('IdP killed and restarted', {
      target: w.target,
      probes: p.probes,
      steadfast: NEEDS_NO_IDP,
      inject: () => w.idp.stop(),
      heal: async () => {
        await w.idp.start();
        await mintNewKid(p.jwtNewKid, Math.ceil(poolSeconds * 5));
      },
    });
    // The fault must have bitten: never-seen opaque tokens cannot be checked without the IdP.
    expect(oracle.perProbe.get('opaque-fresh')!.denied).toBeGreaterThan(0);
  }, 300_000);

  it('JWKS endpoint answering 500, then slow, then garbage: last good keys keep serving; a new kid denies until the endpoint heals', async () => {
    const p = await idpProbes(w, poolSeconds);
    const modes = [
      { kind: 'status', status: 500 },
      { kind: 'slow', ms: 1500 },
      { kind: 'garbage', body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe]) },
      { kind: 'garbage', body: '{"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB"' },
      { kind: 'garbage', body: '{"keys": "all of them"}' },
      { kind: 'garbage', body: '<html>502 Bad Gateway</html>', contentType: 'text/html' },
    ] as const;
    const { oracle } = await runFault('JWKS endpoint 500 / slow / garbage', {
      target: w.target,
      probes: p.probes,
      steadfast: [...NEEDS_NO_IDP, 'opaque-revoked', 'opaque-bogus', 'opaque-fresh'],
      inject: async () => {
        w.jwksFront.set(modes[0]);
        await mintNewKid(p.jwtNewKid, Math.ceil(poolSeconds * 5));
      },
      during: async () => {
        // Each mode holds until a fetch (refresh or unknown-kid refetch) has met it.
        for (const m of modes) {
          const before = w.jwksFront.counts.faulted;
          w.jwksFront.set(m);
          const met = await waitUntil(
            () => w.jwksFront.counts.faulted > before,
            10_000,
            `a JWKS fetch during ${m.kind}`,
          );
          await sleep(Math.max(0, FAULT_MS / modes.length - met));
        }
      },
      heal: async () => w.jwksFront.set({ kind: 'pass' }),
    });
    expect(oracle.perProbe.get('jwt-new-kid')!.denied).toBeGreaterThan(0);
  }, 300_000);

  it('introspection endpoint hanging past the timeout (then 500, then resets): cached answers keep serving, the service answers 503 itself, then recovers', async () => {
    const p = await idpProbes(w, poolSeconds);
    const modes = [{ kind: 'hang' }, { kind: 'status', status: 500 }, { kind: 'reset' }] as const;
    const { oracle } = await runFault('introspection hanging / 500 / reset', {
      target: w.target,
      probes: p.probes,
      steadfast: NEEDS_NO_IDP,
      inject: async () => w.introspectionFront.set(modes[0]),
      during: async () => {
        // The hang gets most of the time: it is the fault that could pile up Checks.
        w.introspectionFront.set(modes[0]);
        await sleep(Math.max(1500, FAULT_MS / 2));
        for (const m of modes.slice(1)) {
          w.introspectionFront.set(m);
          await sleep(Math.max(700, FAULT_MS / 4));
        }
      },
      heal: async () => w.introspectionFront.set({ kind: 'pass' }),
    });
    expect(oracle.perProbe.get('opaque-fresh')!.denied).toBeGreaterThan(0);
    // Portcullis answered the denies itself (503 within its timeout), not Envoy's deadline.
    expect([...oracle.deniedDuringFault.keys()].filter((k) => k.startsWith('rpc:'))).toEqual([]);
  }, 300_000);
});
