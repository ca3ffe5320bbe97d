// Hypervisor steal time: the share of CPU time a virtual machine's CPUs were runnable but the host
// ran something else. On a shared VM it is the first thing to read when two runs disagree (it can
// be large while the machine looks idle), so the bench reports it.
import { readFileSync } from 'node:fs';

export interface CpuTimes {
  /** Clock ticks, all CPUs together. */
  total: number;
  steal: number;
}

/**
 * The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal guest
 * guest_nice. guest and guest_nice are already counted in user and nice, so they are left out.
 * Undefined when the line is not there (not Linux) or has no steal field (kernels before 2.6.11).
 */
export function parseCpuTimes(procStat: string): CpuTimes | undefined {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return undefined;
  return { total: f.slice(0, 8).reduce((s, x) => s + x, 0), steal: f[7] };
}

export function readCpuTimes(): CpuTimes | undefined {
  try {
    return parseCpuTimes(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Steal as a share (0-1) of all CPU time between two readings; NaN if either is missing. */
export function stealShare(from: CpuTimes | undefined, to: CpuTimes | undefined): number {
  if (!from || !to || to.total <= from.total) return NaN;
  return (to.steal - from.steal) / (to.total - from.total);
}
