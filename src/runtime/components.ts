// Turning a config into live components (stores, verifiers, limiters) that decide() is given.
// Each credential kind plugs in here; a component says when it is ready and how to close it.
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { DecideDeps } from '../core/decide.ts';
import type { Config } from '../policy/schema.ts';
import { FileKeyStore } from '../stores/file-keystore.ts';
import type { KeyStore } from '../stores/keystore.ts';
import { MemoryKeyStore } from '../stores/memory-keystore.ts';
import type { Metrics } from './metrics.ts';
import type { OpsHandler } from '../http/ops-server.ts';
import { createIntrospection } from '../credentials/introspection/component.ts';
import { createPhantom, JWKS_PATH } from '../credentials/phantom/component.ts';
import { createJwtComponent } from '../credentials/jwt/index.ts';
import type { RedisConnection } from '../stores/redis/connection.ts';
import { createRateLimiter, createRedisConnection, createRedisKeyStore, rateLimiterFailOpen, redisReadiness } from '../stores/redis/component.ts';

export interface ReadinessCheck {
  name: string;
  ready(): boolean;
  /** Why not ready, for /readyz and the startup log. */
  detail?(): string | undefined;
  /** Ready, but running on fallbacks (e.g. Redis lost, local copies serving): listed by /readyz. */
  degraded?(): string | undefined;
}

export interface Components {
  deps: DecideDeps;
  readiness: ReadinessCheck[];
  /** Extra handlers for the ops listener that belong to this config (e.g. the phantom-token JWKS). */
  opsHandlers: Map<string, OpsHandler>;
  /** Starts background work (initial fetches, watchers). Resolves once started, not once ready. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface ComponentContext {
  config: Config;
  /** Folder of the config file: relative paths in the config resolve against it. */
  dir: string;
  log: Logger;
  metrics: Metrics;
}

export function resolvePath(dir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}

/** `redis`: the components' shared connection; without it a Redis store opens its own (the CLI). */
export function createKeyStore(ctx: ComponentContext, redis?: RedisConnection): KeyStore | undefined {
  const store = ctx.config.credentials.api_key?.store;
  if (!store) return undefined;
  switch (store.type) {
    case 'memory':
      return new MemoryKeyStore();
    case 'file':
      return new FileKeyStore(resolvePath(ctx.dir, store.path), ctx.log.child({ component: 'keystore' }), {
        createFrom: store.create_from === undefined ? undefined : resolvePath(ctx.dir, store.create_from),
      });
    case 'redis':
      return createRedisKeyStore(ctx, store, redis);
  }
}

export async function createComponents(ctx: ComponentContext): Promise<Components> {
  const closers: Array<() => Promise<void>> = [];
  const starters: Array<() => Promise<void>> = [];
  const readiness: ReadinessCheck[] = [];
  const opsHandlers = new Map<string, OpsHandler>();
  const deps: DecideDeps = { now: Date.now };

  // One Redis connection per generation: key store, rate limiter and caches share it.
  const redis = ctx.config.redis ? createRedisConnection(ctx) : undefined;
  if (redis) {
    closers.push(() => redis.close());
    readiness.push(redisReadiness(redis));
  }

  const keyStore = createKeyStore(ctx, redis);
  if (keyStore) {
    deps.keyStore = keyStore;
    starters.push(() => keyStore.start());
    closers.push(() => keyStore.close());
    readiness.push({ name: 'keystore', ready: () => keyStore.isReady() });
  }

  const jwtIssuers = ctx.config.credentials.jwt;
  if (jwtIssuers?.length) {
    const jwt = createJwtComponent({
      issuers: jwtIssuers,
      cache: ctx.config.credentials.jwt_cache,
      resolvePath: (p) => resolvePath(ctx.dir, p),
      log: ctx.log,
      registry: ctx.metrics.registry,
      now: () => deps.now(),
    });
    deps.verifyJwt = (token) => jwt.verify(token);
    starters.push(() => jwt.start());
    closers.push(async () => jwt.close());
    readiness.push(...jwt.readiness);
  }

  const introspection = ctx.config.credentials.introspection;
  if (introspection) {
    const shared = { log: ctx.log.child({ component: 'introspection' }), registry: ctx.metrics.registry, now: () => deps.now(), resolvePath: (p: string) => resolvePath(ctx.dir, p) };
    const introspector = createIntrospection(introspection, { ...shared, cacheScope: ctx.dir, redis });
    deps.introspect = (token) => introspector.introspect(token);
    closers.push(async () => introspector.close());
    if (introspection.phantom_token?.enabled) {
      const phantom = createPhantom(introspection.phantom_token, { ...shared, log: ctx.log.child({ component: 'phantom_token' }) });
      deps.phantomToken = (identity) => phantom.tokenFor(identity);
      starters.push(() => phantom.start());
      readiness.push({ name: 'phantom_token_keys', ready: () => phantom.ready() });
      opsHandlers.set(JWKS_PATH, phantom.jwksHandler);
    }
  }

  if (ctx.config.rate_limits.length) {
    const limiter = createRateLimiter(ctx, redis);
    deps.rateLimiter = limiter;
    deps.onRateLimiterError = rateLimiterFailOpen(ctx);
    closers.push(() => limiter.close());
  }

  return {
    deps,
    readiness,
    opsHandlers,
    async start() {
      for (const s of starters) await s();
    },
    async close() {
      for (const c of closers.reverse()) await c().catch(() => {});
    },
  };
}
