// Child processes under test (Portcullis, the floor) and their memory, read from /proc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How a checkout's Portcullis is started: a script and whether it needs tsx to load. */
export interface Entry {
  script: string;
  tsx: boolean;
}

/** The compiled CLI, as production runs it (bin/portcullis.js imports dist/). */
export const DIST_ENTRY: Entry = { script: 'bin/portcullis.js', tsx: false };
/** The sources through tsx: checkouts from before there was a build. */
export const SOURCE_ENTRY: Entry = { script: 'src/cli/main.ts', tsx: true };

/** Whether a checkout compiles to dist/ (it has the build's tsconfig). */
export const hasBuild = (checkout: string): boolean => existsSync(join(checkout, 'tsconfig.build.json'));

/**
 * Compiles a checkout's src/ into its dist/ (`npm run build`'s `tsc -b`, a no-op when up to date),
 * with that checkout's own TypeScript when it has one, so the servers run what its sources say now.
 */
export function buildCheckout(checkout: string): void {
  const own = join(checkout, 'node_modules/typescript/bin/tsc');
  const tsc = existsSync(own) ? own : join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: checkout, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${checkout}: dist/ could not be built (tsc -b tsconfig.build.json):\n${r.stdout}${r.stderr}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resident memory of the process and its descendants (cluster workers), in bytes. */
  rss(): number;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx <script> ...args` (or without tsx, `tsx: false`, for plain JavaScript)
 * from the repo root (or `cwd`: another checkout), output to logFile; under `taskset -c cpus` when given.
 */
export function startNode(
  name: string,
  script: string,
  args: string[],
  opts: { logFile: string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv; cpus?: string; cwd?: string; tsx?: boolean },
): Proc {
  const out = createWriteStream(opts.logFile);
  const argv = [...(opts.nodeArgs ?? []), ...(opts.tsx === false ? [] : ['--import', 'tsx']), script, ...args];
  // taskset execs node in place, so the pid (and /proc's CPU and memory figures) stay node's.
  const child = spawn(
    opts.cpus ? 'taskset' : process.execPath,
    opts.cpus ? ['-c', opts.cpus, process.execPath, ...argv] : argv,
    {
      cwd: opts.cwd ?? REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    },
  );
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    child,
    pid: child.pid!,
    rss: () => treeRss(child.pid!),
    cpuSeconds: () => treeCpuSeconds(child.pid!),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** CPU seconds (user + system) used so far by a process and its live descendants. */
export function treeCpuSeconds(pid: number): number {
  let total: number;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total = (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
  for (const c of childrenOf(pid)) total += treeCpuSeconds(c);
  return total;
}

// USER_HZ: 100 on every Linux architecture Node runs on.
const CLOCK_TICKS = 100;

export function treeRss(pid: number): number {
  let total = statusField(pid, 'VmRSS');
  for (const c of childrenOf(pid)) total += treeRss(c);
  return total;
}

/** Samples a process tree's RSS every `everyMs`; `peak()` since the last `reset()`. */
export class RssSampler {
  private max = 0;
  private last = 0;
  private timer: NodeJS.Timeout;
  constructor(
    private readonly proc: Proc,
    everyMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }
  sample(): number {
    this.last = this.proc.rss();
    if (this.last > this.max) this.max = this.last;
    return this.last;
  }
  reset(): void {
    this.max = 0;
    this.sample();
  }
  peak(): number {
    this.sample();
    return this.max;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export async function waitUntil(
  what: string,
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  proc?: Proc,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited (code ${proc.child.exitCode}) before ${what}; see its log`);
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
