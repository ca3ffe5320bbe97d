// One Redis connection per config generation, shared by the key store, the rate limiter and the
// caches: single node, Sentinel or Cluster from the `redis` config section.
//
// Fail fast, never queue: the offline queue is off and every command has a timeout, so a Check
// never waits for a reconnect; the caller denies (503) or applies on_redis_error instead.
// ioredis reconnects by itself, backing off up to 1 s between attempts.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { DependencyUnavailableError } from '../../core/errors.ts';
import { redactUrl } from '../../plumbing/redact-url.ts';
import type { RedisConfig } from '../../policy/schema.ts';
import type { RedisMetrics } from './metrics.ts';
import { Memo } from '../../plumbing/memo.ts';
import { childSpansOn, withChildSpan, type SpanAttributes } from '../../telemetry/tracing.ts';

export type RedisClient = Redis | Cluster;

/** Seconds a client is told to wait (Retry-After) when Redis is down. */
export const REDIS_RETRY_AFTER_SECONDS = 2;

const retryDelayMs = (times: number) => Math.min(times * 100, 1000);

/**
 * What logs, /readyz and errors say about the Redis target. Single node: the URL parsed as ioredis
 * parses it, with no part of its userinfo and no query value (src/plumbing/redact-url.ts). Sentinel and Cluster:
 * the configured addresses only; their passwords (`password`, `sentinel_password`) are separate
 * options and never part of the description.
 */
export function describeRedisTarget(cfg: RedisConfig): string {
  if (cfg.mode === 'sentinel')
    return `sentinel ${cfg.sentinel_name} via ${(cfg.sentinels ?? []).map((s) => `${s.host}:${s.port}`).join(',')}`;
  if (cfg.mode === 'cluster') return `cluster ${(cfg.nodes ?? []).join(',')}`;
  return redactUrl(cfg.url);
}

/** Builds the ioredis client for the configured mode. Connects immediately, in the background. */
export function createRedisClient(cfg: RedisConfig, name = 'portcullis'): RedisClient {
  const common: RedisOptions = {
    connectionName: name,
    enableOfflineQueue: false,
    // Many Checks in the same tick share one write: the rate limiter's round trips batch up.
    enableAutoPipelining: true,
    commandTimeout: cfg.command_timeout_ms,
    connectTimeout: cfg.connect_timeout_ms,
    maxRetriesPerRequest: 0,
    retryStrategy: retryDelayMs,
    keepAlive: 10_000,
  };
  const auth: RedisOptions = {
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(cfg.tls ? { tls: {} } : {}),
  };
  switch (cfg.mode) {
    case 'single':
      return new Redis(cfg.url, common);
    case 'sentinel':
      return new Redis({
        ...common,
        ...auth,
        sentinels: cfg.sentinels,
        name: cfg.sentinel_name,
        ...(cfg.sentinel_password !== undefined ? { sentinelPassword: cfg.sentinel_password } : {}),
        sentinelRetryStrategy: retryDelayMs,
      });
    case 'cluster': {
      const nodes = (cfg.nodes ?? []).map((n) => {
        const i = n.lastIndexOf(':');
        return { host: n.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(n.slice(i + 1)) };
      });
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: retryDelayMs,
        redisOptions: { ...common, ...auth, enableAutoPipelining: false },
      };
      return new Cluster(nodes, options);
    }
  }
}

function errorKind(e: unknown): 'unavailable' | 'timeout' | 'error' {
  const msg = (e as Error)?.message ?? '';
  if (/timed out/i.test(msg)) return 'timeout';
  if (/enableOfflineQueue|Connection is closed|not writeable|ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|ready/i.test(msg))
    return 'unavailable';
  return 'error';
}

/**
 * The shared connection plus what every user of it needs: key naming under the prefix, status,
 * and `run()`, which times a command and turns any failure into DependencyUnavailableError.
 */
/** The Redis command each operation of run() sends: the span's db.operation.name. */
const REDIS_COMMANDS: Readonly<Record<string, string>> = {
  cache_get: 'GET',
  cache_set: 'SET',
  cache_delete: 'DEL',
  dpop_replay: 'SET',
  keystore_get: 'HGET',
  keystore_load: 'MULTI',
  keystore_put: 'EVALSHA',
  keystore_version: 'GET',
  ratelimit: 'EVALSHA',
};

/** server.address / server.port of a single Redis node (its URL's host, never userinfo); none for Sentinel, Cluster. */
function redisServer(cfg: RedisConfig): SpanAttributes {
  if (cfg.mode === 'sentinel' || cfg.mode === 'cluster' || typeof cfg.url !== 'string') return {};
  try {
    const u = new URL(cfg.url);
    return { 'server.address': u.hostname, 'server.port': u.port === '' ? 6379 : Number(u.port) };
  } catch {
    return {};
  }
}

export class RedisConnection {
  readonly client: RedisClient;
  readonly prefix: string;
  readonly target: string;
  private subscriberClient?: RedisClient;
  private wasReady = false;
  private closed = false;
  private readonly readyListeners = new Set<() => void>();
  private readonly serverAttributes: SpanAttributes;

  constructor(
    readonly config: RedisConfig,
    private readonly log: Logger,
    private readonly metrics?: RedisMetrics,
    name = 'portcullis',
  ) {
    this.prefix = config.key_prefix;
    this.serverAttributes = redisServer(config);
    this.target = describeRedisTarget(config);
    this.client = createRedisClient(config, name);
    this.client.on('ready', () => {
      if (this.closed) return;
      this.metrics?.up.set(1);
      this.log.info({ redis: this.target }, this.wasReady ? 'redis reconnected' : 'redis connected');
      this.wasReady = true;
      for (const l of this.readyListeners) l();
    });
    this.client.on('close', () => {
      if (this.closed) return;
      this.metrics?.up.set(0);
      if (this.wasReady)
        this.log.warn({ redis: this.target }, 'redis connection lost; serving from local copies and reconnecting');
    });
    // Without a listener ioredis reports every failed reconnect as an unhandled 'error' event.
    let lastErrorLog = 0;
    this.client.on('error', (e: Error) => {
      if (this.closed) return;
      const now = Date.now();
      if (now - lastErrorLog < 10_000) return;
      lastErrorLog = now;
      this.log.warn(
        { redis: this.target, err: e.message },
        'redis unavailable (config: redis); retrying. Check that Redis is running and reachable',
      );
    });
  }

  /** The configured prefix plus the parts, e.g. key('keys') -> "portcullis:keys". */
  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  isUp(): boolean {
    return this.client.status === 'ready';
  }

  /** True once the first connection succeeded (readiness), whatever the state since. */
  hasBeenReady(): boolean {
    return this.wasReady;
  }

  /** Called on every (re)connection. */
  onReady(listener: () => void): () => void {
    this.readyListeners.add(listener);
    return () => this.readyListeners.delete(listener);
  }

  /** Resolves when connected; rejects after timeoutMs with an operator-facing message. */
  waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.isUp()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new Error(
            `cannot reach Redis at ${this.target} within ${timeoutMs} ms (config: redis); check that it runs and the address and password are right`,
          ),
        );
      }, timeoutMs);
      const off = this.onReady(() => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /**
   * A second connection for SUBSCRIBE (a subscribed connection can run nothing else).
   * The user subscribes again on every 'ready' (see RedisKeyStore). ioredis's own resubscribe is
   * off: it sends SUBSCRIBE without handling its promise, so a connection closed just after a
   * reconnect (a restart, a shutdown) would surface as an unhandled rejection.
   */
  subscriber(): RedisClient {
    if (!this.subscriberClient) {
      // Queued, unlike the command connection: SUBSCRIBE sent before the first connect (or during
      // a reconnect) must still happen. Nothing on the hot path waits for it.
      const sub =
        this.client instanceof Cluster
          ? this.client.duplicate([], {
              enableOfflineQueue: true,
              redisOptions: { ...this.client.options.redisOptions, maxRetriesPerRequest: null },
            })
          : this.client.duplicate({
              enableOfflineQueue: true,
              maxRetriesPerRequest: null,
              enableAutoPipelining: false,
              autoResubscribe: false,
              connectionName: 'portcullis-sub',
            });
      sub.on('error', () => {
        // Reported by the main connection's handler; this one reconnects alongside it.
      });
      this.subscriberClient = sub;
    }
    return this.subscriberClient;
  }

  private readonly timers = new Memo<string, { observe(v: number): void }>(64);
  private lastCommandErrorLog = 0;

  /**
   * Runs one Redis operation: timed, counted, and any failure thrown as DependencyUnavailableError.
   * Under a traced Check, a CLIENT span named after the command (never its keys or arguments).
   */
  run<T>(op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    if (!childSpansOn()) return this.runTimed(op, fn);
    const command = REDIS_COMMANDS[op] ?? 'REDIS';
    return withChildSpan('redis', { 'db.operation.name': command, ...this.serverAttributes }, () =>
      this.runTimed(op, fn),
    );
  }

  private async runTimed<T>(op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    // Label children cached per op: the rate limiter runs this on every Check.
    const timer =
      this.timers.get(op) ?? (this.metrics ? this.timers.set(op, this.metrics.commandDuration.labels(op)) : undefined);
    const start = timer ? performance.now() : 0;
    try {
      return await fn(this.client);
    } catch (e) {
      const kind = errorKind(e);
      this.metrics?.commandErrors.inc({ op, kind });
      const now = Date.now();
      if (kind === 'error' && now - this.lastCommandErrorLog > 10_000) {
        this.lastCommandErrorLog = now;
        this.log.error(
          { redis: this.target, op, err: (e as Error).message },
          'redis command failed (Redis answered an error; logged at most every 10 s)',
        );
      }
      throw new DependencyUnavailableError(
        kind === 'timeout' ? 'redis_timeout' : kind === 'unavailable' ? 'redis_unavailable' : 'redis_error',
        REDIS_RETRY_AFTER_SECONDS,
      );
    } finally {
      timer?.observe((performance.now() - start) / 1000);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.readyListeners.clear();
    const quit = async (c: RedisClient) => {
      try {
        if (c.status === 'ready') await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))]);
      } catch {
        // QUIT failed: the connection is dropped below anyway.
      }
      c.disconnect();
    };
    await Promise.all([quit(this.client), ...(this.subscriberClient ? [quit(this.subscriberClient)] : [])]);
  }
}
