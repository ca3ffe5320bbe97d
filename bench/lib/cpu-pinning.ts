// `--pin-server CPUS`: the servers under test on some CPUs, the bench and its load generators
// (h2load, the generator's worker threads) on the others, with taskset (util-linux). On a shared
// machine the load generator otherwise takes CPU from whichever server it is driving.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

export interface CpuPinning {
  /** taskset list for the servers, e.g. "0" or "0-1". */
  server: string;
  /** taskset list for this process and the load it starts. */
  load: string;
}

/** Parses "0", "0,2" or "0-1" into CPU numbers; throws a message naming the option. */
export function parseCpuList(list: string, available = cpus().length): number[] {
  const out = new Set<number>();
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`--pin-server: "${list}" is not a CPU list (e.g. 0, 0-1 or 0,2)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`--pin-server: "${part}" is an empty range`);
    for (let c = from; c <= to; c++) {
      if (c >= available) throw new Error(`--pin-server: CPU ${c} does not exist (this machine has CPUs 0-${available - 1})`);
      out.add(c);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Server CPUs as asked, load on every other CPU; at least one must be left for the load. */
export function planPinning(list: string, available = cpus().length): CpuPinning {
  const server = parseCpuList(list, available);
  const load = Array.from({ length: available }, (_, c) => c).filter((c) => !server.includes(c));
  if (load.length === 0) throw new Error(`--pin-server ${list}: no CPU left for the load generators (this machine has ${available})`);
  return { server: server.join(','), load: load.join(',') };
}

export function tasksetAvailable(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Moves this process, all its threads, and so everything it starts later, onto `cpus`. */
export function pinThisProcess(cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
}
