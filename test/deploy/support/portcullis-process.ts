// A real `node bin/portcullis.js serve --config FILE` child process, for signal, reload and TLS tests.
// Listeners use port 0; the ports are read from the "portcullis started" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface PortcullisProcess {
  proc: ChildProcess;
  grpcPort: number;
  httpPort: number;
  logs: LogLine[];
  /** Resolves with the first log line (past or future) matching `msg`. */
  waitForLog(msg: RegExp, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (and signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export async function startPortcullis(
  configFile: string,
  opts: { env?: Record<string, string>; startTimeoutMs?: number } = {},
): Promise<PortcullisProcess> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--config', configFile], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { re: RegExp; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { level: 0, msg: line };
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (w.re.test(parsed.msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const waitForLog = (re: RegExp, timeoutMs = 10_000) => {
    const seen = logs.find((l) => re.test(l.msg));
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const w = { re, resolve: (l: LogLine) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(
          new Error(
            `no log line matching ${re} within ${timeoutMs} ms; logs:\n${logs.map((l) => l.msg).join('\n')}\nstderr:\n${stderr}`,
          ),
        );
      }, timeoutMs);
      waiters.push(w);
    });
  };

  const started = await Promise.race([
    waitForLog(/^portcullis started$/, opts.startTimeoutMs ?? 20_000),
    exited.then(({ code }) => {
      throw new Error(
        `portcullis exited with ${code} before starting:\n${stderr}\n${logs.map((l) => l.msg).join('\n')}`,
      );
    }),
  ]);
  return {
    proc,
    grpcPort: started.grpc_port as number,
    httpPort: started.http_port as number,
    logs,
    waitForLog,
    exited,
    kill: (signal = 'SIGTERM') => void proc.kill(signal),
  };
}

/** afterAll helper: SIGKILL whatever is still running. */
export function killAll(ps: (PortcullisProcess | undefined)[]): void {
  for (const p of ps) if (p && p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
}
