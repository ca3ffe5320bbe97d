// A real redis-server for tests: free port, temp dir, no persistence unless asked (SAVE writes
// dump.rdb in its dir, which a restart loads). Can be killed (SIGKILL, like a crash) and restarted
// on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { restartablePort } from './ports.ts';
import { requireProgram } from './programs.ts';
import { tempDir } from './service.ts';

/** REDIS_SERVER, else redis-server from PATH; a clear error when there is none (see programs.ts). */
export const redisServerBinary = (): string => requireProgram('redis-server');

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

function spawnRedis(port: number, dir: string, extra: string[] = [], configFile?: string): Promise<ChildProcess> {
  const child = spawn(
    redisServerBinary(),
    [
      ...(configFile ? [configFile] : []),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--dbfilename',
      'dump.rdb',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not start:\n${out}`));
    }, 10_000);
    const poll = async () => {
      const probe = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.ping();
        clearTimeout(timer);
        resolve(child);
      } catch {
        if (child.exitCode === null) setTimeout(() => void poll(), 30);
      } finally {
        probe.disconnect();
      }
    };
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${out}`));
    });
    void poll();
  });
}

/** extra: more redis-server arguments; configFile: a config file to start from (sentinel needs one). */
export async function startRedis(
  opts: { extra?: string[]; configFile?: (dir: string) => string } = {},
): Promise<TestRedis> {
  const dir = tempDir('portcullis-redis-');
  const configFile = opts.configFile?.(dir);
  let port = 0;
  let child: ChildProcess | undefined;
  // Another process may take the free port between probe and bind: try a few. The port is
  // outside the ephemeral range so that it is still free when restart() needs it again.
  for (let attempt = 0; !child; attempt++) {
    port = await restartablePort();
    try {
      child = await spawnRedis(port, dir, opts.extra, configFile);
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
      child = await spawnRedis(port, dir, opts.extra, configFile);
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await kill();
    },
  };
}

/** Three masters sharing the 16384 slots: a real Redis Cluster, built without redis-cli. */
export async function startRedisCluster(): Promise<{ nodes: TestRedis[]; seeds: string[]; stop(): Promise<void> }> {
  const nodes = await Promise.all(
    [0, 1, 2].map(() =>
      startRedis({
        extra: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
      }),
    ),
  );
  const ranges = [
    [0, 5460],
    [5461, 10922],
    [10923, 16383],
  ];
  await Promise.all(
    nodes.map((n, i) => n.client().call('CLUSTER', 'ADDSLOTSRANGE', String(ranges[i][0]), String(ranges[i][1]))),
  );
  for (const n of nodes.slice(1)) await nodes[0].client().call('CLUSTER', 'MEET', '127.0.0.1', String(n.port));
  const deadline = Date.now() + 15_000;
  for (const n of nodes) {
    for (;;) {
      const info = String(await n.client().call('CLUSTER', 'INFO'));
      if (info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3')) break;
      if (Date.now() > deadline) throw new Error(`redis cluster did not form:\n${info}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`),
    stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))),
  };
}

/** A Sentinel watching `master` as group "mymaster" (quorum 1). */
export async function startRedisSentinel(master: TestRedis): Promise<TestRedis> {
  return startRedis({
    extra: ['--sentinel'],
    configFile: (dir) => {
      const file = join(dir, 'sentinel.conf');
      writeFileSync(
        file,
        `sentinel monitor mymaster 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds mymaster 5000\n`,
      );
      return file;
    },
  });
}
