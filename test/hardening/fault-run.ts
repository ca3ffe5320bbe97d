// One fault, run the same way every time: steady traffic, inject, hold, heal, wait for the
// service to recover by itself, steady traffic again; every answer judged by the oracle.
import { expect } from 'vitest';
import { drive, sleep, waitUntil, type CheckTarget, type Oracle, type Probe, type Traffic } from '../support/faults.ts';

/** Durations: short by default (CI); `npm run test:hardening` sets FAULT_SECONDS for the long run. */
export const FAULT_MS = Number(process.env.FAULT_SECONDS ?? 3) * 1000;
export const STEADY_MS = Math.max(1000, FAULT_MS / 3);
export const RECOVERY_TIMEOUT_MS = Number(process.env.FAULT_RECOVERY_SECONDS ?? 15) * 1000;
export const FAULT_RATE = Number(process.env.FAULT_RATE ?? 300);

export interface FaultResult {
  oracle: Oracle;
  recoveryMs: number;
  traffic: Traffic;
}

export const results: Array<{ label: string; line: string }> = [];

export async function runFault(
  label: string,
  opts: {
    target: CheckTarget;
    probes: Probe[];
    /** Probes the design says stay exactly correct during this fault. */
    steadfast?: string[];
    inject(traffic: Traffic): Promise<void>;
    /** Held for FAULT_MS unless given: runs during the fault (e.g. several fault modes in turn). */
    during?(traffic: Traffic): Promise<void>;
    heal(traffic: Traffic): Promise<void>;
    /** Probes that must be correct again before the service counts as recovered (default: all). */
    recoveredWhen?: string[];
    concurrency?: number;
  },
): Promise<FaultResult> {
  const traffic = drive({
    target: opts.target,
    probes: opts.probes,
    concurrency: opts.concurrency ?? 8,
    ratePerSecond: FAULT_RATE,
    deadlineMs: 3000,
  });
  for (const s of opts.steadfast ?? []) traffic.oracle.steadfast.add(s);
  let recoveryMs = -1;
  try {
    await sleep(STEADY_MS);
    traffic.phase = 'fault';
    await opts.inject(traffic);
    if (opts.during) await opts.during(traffic);
    else await sleep(FAULT_MS);
    traffic.phase = 'recovery';
    const healedAt = Date.now();
    await opts.heal(traffic);
    recoveryMs = await waitUntil(
      () => traffic.oracle.allCorrectSince(healedAt, opts.recoveredWhen),
      RECOVERY_TIMEOUT_MS,
      `${label}: recovery`,
    ).then(() => Date.now() - healedAt);
    traffic.phase = 'steady';
    await sleep(STEADY_MS);
  } finally {
    await traffic.stop();
    const line = `${traffic.oracle.summary(label)}, recovered in ${recoveryMs} ms`;
    console.log(line);
    results.push({ label, line });
    if (recoveryMs < 0)
      console.log(
        'not recovered:',
        [...traffic.oracle.perProbe]
          .filter(([, s]) => s.lastIncorrectAt >= s.lastCorrectAt)
          .map(([n]) => n)
          .join(' '),
      );
  }
  const o = traffic.oracle;
  expect(o.wrongSamples, `${label}: wrong answers`).toEqual([]);
  expect(o.wrong).toBe(0);
  expect(recoveryMs).toBeGreaterThanOrEqual(0);
  return { oracle: o, recoveryMs, traffic };
}
