// Turning a config into the live components of one generation (stores, verifiers, limiters) that
// decide() is given. Verifiers come from the registry by kind (src/credentials/registry.ts); each
// component says when it is ready and how to close it.
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { DecideDeps, Verifiers } from '../core/deps.ts';
import { CREDENTIAL_KIND_NAMES } from '../core/types.ts';
import type { ComponentContext, OpsHandler, ReadinessCheck } from '../plumbing/component.ts';
import { createPhantom, JWKS_PATH } from '../credentials/phantom/component.ts';
import { createPopChecker } from '../credentials/pop/component.ts';
import { VERIFIER_FACTORIES } from '../credentials/registry.ts';
import { createMetadataComponent } from '../resources/component.ts';
import { joseMetadataSigner, type MetadataSigner } from '../resources/metadata.ts';
import type { Config } from '../policy/schema.ts';
import { FileKeyStore } from '../stores/file-keystore.ts';
import type { KeyStore } from '../stores/keystore.ts';
import { MemoryKeyStore } from '../stores/memory-keystore.ts';
import type { RedisConnection } from '../stores/redis/connection.ts';
import {
  createRateLimiter,
  createRedisConnection,
  createRedisKeyStore,
  rateLimiterFailOpen,
  redisReadiness,
} from '../stores/redis/component.ts';
import type { Metrics } from './metrics.ts';

export type { ReadinessCheck };

export interface Components {
  deps: DecideDeps;
  /** The generation's key store, when credentials.api_key is configured (metrics, published-key warnings). */
  keyStore: KeyStore | undefined;
  readiness: ReadinessCheck[];
  /** Extra handlers for the ops listener that belong to this config (e.g. the phantom-token JWKS). */
  opsHandlers: Map<string, OpsHandler>;
  /** Starts background work (initial fetches, watchers). Resolves once started, not once ready. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** What a generation is built from. */
export interface GenerationContext {
  config: Config;
  /** Folder of the config file: relative paths in the config resolve against it. */
  dir: string;
  log: Logger;
  metrics: Metrics;
}

export function resolvePath(dir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}

function componentContext(g: GenerationContext, now: () => number): ComponentContext {
  return { log: g.log, registry: g.metrics.registry, now, resolvePath: (p) => resolvePath(g.dir, p) };
}

/** `redis`: the components' shared connection; without it a Redis store opens its own (the CLI). */
export function createKeyStore(g: GenerationContext, redis?: RedisConnection): KeyStore | undefined {
  const store = g.config.credentials.api_key?.store;
  if (!store) return undefined;
  switch (store.type) {
    case 'memory':
      return new MemoryKeyStore();
    case 'file':
      return new FileKeyStore(resolvePath(g.dir, store.path), g.log.child({ component: 'keystore' }), {
        createFrom: store.create_from === undefined ? undefined : resolvePath(g.dir, store.create_from),
      });
    case 'redis':
      if (!g.config.redis) throw new Error('a Redis store needs the top-level redis section');
      return createRedisKeyStore(g.config.redis, store, componentContext(g, Date.now), redis);
  }
}

export async function createComponents(g: GenerationContext): Promise<Components> {
  const closers: Array<() => void | Promise<void>> = [];
  const starters: Array<() => Promise<void>> = [];
  const readiness: ReadinessCheck[] = [];
  const opsHandlers = new Map<string, OpsHandler>();
  const verifiers: { -readonly [K in keyof Verifiers]: Verifiers[K] } = {};
  const deps: DecideDeps = { now: Date.now, verifiers };
  // Components read the clock through deps, so a test that replaces deps.now moves them all.
  const ctx = componentContext(g, () => deps.now());

  // One Redis connection per generation: key store, rate limiter and caches share it.
  const redis = g.config.redis ? createRedisConnection(g.config.redis, ctx) : undefined;
  if (redis) {
    closers.push(() => redis.close());
    readiness.push(redisReadiness(redis));
  }

  const keyStore = createKeyStore(g, redis);
  if (keyStore) {
    starters.push(() => keyStore.start());
    closers.push(() => keyStore.close());
    readiness.push({ name: 'keystore', ready: () => keyStore.isReady() });
  }

  for (const kind of CREDENTIAL_KIND_NAMES) {
    const c = VERIFIER_FACTORIES[kind]({ ...ctx, config: g.config, redis, keyStore, cacheScope: g.dir });
    if (!c) continue;
    verifiers[kind] = c.verifier;
    if (c.start) starters.push(() => c.start!());
    if (c.close) closers.push(() => c.close!());
    if (c.readiness) readiness.push(...c.readiness);
    for (const [path, handler] of c.opsHandlers ?? []) opsHandlers.set(path, handler);
  }

  // DPoP proofs and certificate-bound tokens: always, so that a bound token is never a bearer token.
  deps.pop = createPopChecker(g.config, { ...ctx, cacheScope: g.dir }, redis);

  const phantomConfig = g.config.credentials.introspection?.phantom_token;
  let metadataSigner: () => MetadataSigner | undefined = () => undefined;
  if (phantomConfig?.enabled) {
    const phantom = createPhantom(phantomConfig, { ...ctx, log: g.log.child({ component: 'phantom_token' }) });
    metadataSigner = () => {
      const key = phantom.signingKey();
      return key && joseMetadataSigner(key);
    };
    deps.phantomToken = (identity) => phantom.tokenFor(identity);
    starters.push(() => phantom.start());
    readiness.push({ name: 'phantom_token_keys', ready: () => phantom.ready() });
    opsHandlers.set(JWKS_PATH, phantom.jwksHandler);
  }

  // After the phantom component: signed metadata uses its key, which exists once it has started.
  if (g.config.protected_resources.length) {
    const metadata = createMetadataComponent(g.config.protected_resources, { signer: metadataSigner, now: ctx.now });
    starters.push(() => metadata.start());
    readiness.push(metadata.readiness);
    for (const [path, handler] of metadata.opsHandlers) opsHandlers.set(path, handler);
  }

  if (g.config.rate_limits.length) {
    const limiter = createRateLimiter(ctx, redis);
    deps.rateLimiter = limiter;
    deps.onRateLimiterError = rateLimiterFailOpen(ctx);
    closers.push(() => limiter.close());
  }

  return {
    deps,
    keyStore,
    readiness,
    opsHandlers,
    async start() {
      for (const s of starters) await s();
    },
    async close() {
      for (const c of closers.reverse()) {
        try {
          await c();
        } catch {
          // Closing is best effort: the next closer still runs.
        }
      }
    },
  };
}
