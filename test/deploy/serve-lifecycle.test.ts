// `portcullis serve` starts whole or not at all, and stops in order:
// - a listener that cannot bind (a port in use) is fatal: exit non-zero with one clean line, nothing
//   left listening (it used to keep answering Checks with no health or metrics endpoint);
// - on Ctrl-C the log says "draining" before "stopped", even when stdout is slow.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../../src/cli/serve.ts';
import { BIN } from '../support/cli.ts';
import { tempDir } from '../support/service.ts';

const SLOW_STDOUT = fileURLToPath(new URL('../support/slow-stdout.cjs', import.meta.url));

let taken: Server;
let takenPort: number;

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  takenPort = (taken.address() as AddressInfo).port;
});
afterAll(() => taken?.close());

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function writeConfig(grpcPort: number, httpPort: number): string {
  const file = join(tempDir(), 'portcullis.yaml');
  writeFileSync(
    file,
    `server:\n  grpc: { address: "127.0.0.1:${grpcPort}" }\n  http: { address: "127.0.0.1:${httpPort}" }\n  shutdown_grace_seconds: 2\nroutes: []\n`,
  );
  return file;
}

/** Runs `node [pre] bin/portcullis.js args`; kills it after `killAfterMs` (a hang is a failure). */
function run(
  args: string[],
  opts: {
    pre?: string[];
    onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
    killAfterMs?: number;
  } = {},
) {
  const child = spawn(process.execPath, [...(opts.pre ?? []), BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    opts.onStdout?.(stdout, child);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 15_000);
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      }),
  );
}

describe('a listener that cannot bind is fatal', () => {
  it('ops port in use: exits 1 with one line naming server.http.address; the gRPC port is closed again', async () => {
    const grpcPort = await freePort();
    const r = await run(['serve', '-c', writeConfig(grpcPort, takenPort)]);
    expect(r.signal).toBeNull(); // exited by itself, not killed after hanging
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${takenPort} \\(server\\.http\\.address\\).*EADDRINUSE`),
      ),
    ]);
    expect(await accepts(grpcPort)).toBe(false);
  });

  it('gRPC port in use: exits 1 with one clean line on stderr (no grpc-js line of its own)', async () => {
    const r = await run(['serve', '-c', writeConfig(takenPort, await freePort())]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${takenPort} \\(server\\.grpc\\.address\\)`)),
    ]);
    expect(r.stderr).not.toMatch(/^E /m);
  });

  it('in process: serve() rejects and closes the listener it had opened', async () => {
    const grpcPort = await freePort();
    const log = pino({ level: 'silent' });
    await expect(serve({ configFile: writeConfig(grpcPort, takenPort), log, watchIntervalMs: 0 })).rejects.toThrow(
      /server\.http\.address/,
    );
    expect(await accepts(grpcPort)).toBe(false);
  });
});

describe('stopping', () => {
  it('Ctrl-C with a slow stdout: every line is written, "draining" before "stopped", exit 0', async () => {
    let signalled = false;
    const r = await run(['serve', '-c', writeConfig(await freePort(), await freePort())], {
      pre: ['--require', SLOW_STDOUT],
      onStdout: (text, child) => {
        if (!signalled && text.includes('"portcullis started"')) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(r.code).toBe(0);
    const msgs = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    const draining = msgs.findIndex((m) => m.startsWith('draining'));
    expect(draining).toBeGreaterThan(-1);
    expect(msgs.slice(draining + 1)).toEqual(['stopped']);
  });
});
