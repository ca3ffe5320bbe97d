// `--pin-server CPUS`: the servers under test on some CPUs, the bench and its load generators
// (h2load, the generator's worker threads) on the others, with taskset (util-linux). On a shared
// machine the load generator otherwise takes CPU from whichever server it is driving. It is the
// default wherever it can be done (Linux, taskset, two CPUs or more): `--pin-server none` turns it off.
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
      if (c >= available)
        throw new Error(`--pin-server: CPU ${c} does not exist (this machine has CPUs 0-${available - 1})`);
      out.add(c);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Server CPUs as asked, load on every other CPU; at least one must be left for the load. */
export function planPinning(list: string, available = cpus().length): CpuPinning {
  const server = parseCpuList(list, available);
  const load = Array.from({ length: available }, (_, c) => c).filter((c) => !server.includes(c));
  if (load.length === 0)
    throw new Error(`--pin-server ${list}: no CPU left for the load generators (this machine has ${available})`);
  return { server: server.join(','), load: load.join(',') };
}

/**
 * What `--pin-server` means when it is not given: the servers on CPU 0 and the load on the rest
 * where that is possible; undefined (unpinned) on one CPU or without taskset. "none" is unpinned.
 */
export function pinningFor(
  option: string | undefined,
  available = cpus().length,
  taskset = tasksetAvailable(),
): CpuPinning | undefined {
  if (option === 'none') return undefined;
  if (option !== undefined) {
    if (!taskset)
      throw new Error('--pin-server needs taskset (util-linux: apt-get install -y util-linux), or --pin-server none');
    return planPinning(option, available);
  }
  return taskset && available >= 2 ? planPinning('0', available) : undefined;
}

/** Every CPU of the machine as a taskset list. */
export function allCpus(available = cpus().length): string {
  return available > 1 ? `0-${available - 1}` : '0';
}

export function tasksetAvailable(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Moves a process and all its threads (and so everything it starts later) onto `cpus`. */
export function pinProcess(cpus: string, pid = process.pid): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
