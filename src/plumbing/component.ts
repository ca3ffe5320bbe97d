// What every component of a config generation (a verifier, a store, a limiter) is built with and
// reports back: its context, its readiness, the ops handlers it serves. The runtime assembles
// components from these shapes (src/runtime/components.ts); the components never import the runtime.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/** The service around a component: its log, the metrics registry, the clock, and config paths. */
export interface ComponentContext {
  log: Logger;
  /** One registry per process: components look their metrics up before creating them (config reloads). */
  registry: Registry;
  /** Milliseconds since epoch; tests move it by hand. */
  now: () => number;
  /** A config-relative path made absolute (against the config file's folder). */
  resolvePath: (p: string) => string;
}

export interface ReadinessCheck {
  name: string;
  ready(): boolean;
  /** Why not ready, for /readyz and the startup log. */
  detail?(): string | undefined;
  /** Ready, but running on fallbacks (e.g. Redis lost, local copies serving): listed by /readyz. */
  degraded?(): string | undefined;
}

/** A handler on the ops listener (the phantom-token JWKS, forward-auth). */
export type OpsHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** What a component adds to its generation besides its main object. All optional. */
export interface Lifecycle {
  readiness?: readonly ReadinessCheck[];
  /** Ops listener paths this component serves while its generation is current. */
  opsHandlers?: ReadonlyMap<string, OpsHandler>;
  /** Starts background work (first fetches, watchers). Resolves once started, not once ready. */
  start?(): Promise<void>;
  close?(): void | Promise<void>;
}
