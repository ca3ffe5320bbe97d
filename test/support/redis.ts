// A real redis-server for tests: free port, temp dir, no persistence unless asked (SAVE writes
// dump.rdb in its dir, which a restart loads). Can be killed (SIGKILL, like a crash) and restarted
// on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { tempDir } from './service.ts';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** A plain client for the test itself (assertions, SAVE, FLUSHALL). */
  client(): Redis;
  /** SIGKILL: no goodbye to connected clients, like a crash. */
  kill(): Promise<void>;
  /** Starts again on the same port (loading dump.rdb if SAVE wrote one). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function spawnRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb', '--protected-mode', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not start:\n${out}`));
    }, 10_000);
    const poll = async () => {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.ping();
        clearTimeout(timer);
        resolve(child);
      } catch {
        if (child.exitCode === null) setTimeout(poll, 30);
      } finally {
        probe.disconnect();
      }
    };
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${out}`));
    });
    void poll();
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = tempDir('portcullis-redis-');
  let port = 0;
  let child: ChildProcess | undefined;
  // Another process may take the free port between probe and bind: try a few.
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnRedis(port, dir);
    } catch (e) {
      if (attempt >= 4) throw e;
    }
  }
  const clients: Redis[] = [];
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client() {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    kill,
    async restart() {
      await kill();
      child = await spawnRedis(port, dir);
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await kill();
    },
  };
}
