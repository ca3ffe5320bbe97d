// The JWT credential as a component: one JwksManager per configured issuer, one verifier, the
// caches, readiness per issuer. Built per config generation through the registry (../registry.ts).
import type { Registry } from 'prom-client';
import type { ComponentContext, ReadinessCheck } from '../../plumbing/component.ts';
import type { JwtCacheConfig, JwtIssuerConfig } from '../../policy/schema.ts';
import { compileIssuerPolicy } from './issuer-policy.ts';
import { JwksManager, type CarriedKeys } from './jwks-manager.ts';
import { createJwksSource } from './jwks-source.ts';
import { JwtMetrics } from './metrics.ts';
import { TokenCache } from './token-cache.ts';
import { JwtVerifier } from './verifier.ts';

/** Last good keys per service (registry), so a config reload never starts from nothing. */
const carriedByRegistry = new WeakMap<Registry, Map<string, CarriedKeys>>();

/** How long start() waits for the first JWKS loads, so a reload usually swaps in a ready verifier. */
const START_WAIT_MS = 2000;

export interface JwtComponent {
  verifier: JwtVerifier;
  readiness: Array<ReadinessCheck & { detail(): string | undefined }>;
  /** Starts every issuer's first load; resolves when all have been tried once, or after 2 s. */
  start(): Promise<void>;
  close(): void;
}

export interface JwtComponentOptions extends Omit<ComponentContext, 'now'> {
  issuers: JwtIssuerConfig[];
  cache: JwtCacheConfig;
  now?: () => number;
}

export function createJwtComponent(opts: JwtComponentOptions): JwtComponent {
  const now = opts.now ?? Date.now;
  const metrics = JwtMetrics.for(opts.registry);
  const log = opts.log.child({ component: 'jwt' });
  let carried = carriedByRegistry.get(opts.registry);
  if (!carried) carriedByRegistry.set(opts.registry, (carried = new Map<string, CarriedKeys>()));
  const issuers = opts.issuers.map((cfg, i) => ({
    policy: compileIssuerPolicy(cfg, i),
    jwks: new JwksManager(cfg, i, createJwksSource(cfg, i, opts.resolvePath), metrics, log, now, carried),
  }));
  const cache = new TokenCache({
    maxEntries: opts.cache.max_entries,
    ttlSeconds: opts.cache.ttl_seconds,
    rejectedMaxEntries: opts.cache.rejected_max_entries,
    rejectedTtlSeconds: opts.cache.rejected_ttl_seconds,
  });
  const verifier = new JwtVerifier(issuers, cache, metrics, now);
  return {
    verifier,
    readiness: issuers.map(({ jwks }) => ({
      name: `jwks ${jwks.issuer}`,
      ready: () => jwks.ready(),
      detail: () => jwks.detail(),
    })),
    async start() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(issuers.map(({ jwks }) => jwks.start())),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, START_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    },
    close() {
      for (const { jwks } of issuers) jwks.close();
    },
  };
}
