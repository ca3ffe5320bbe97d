// Creating tracing from the config: off (the default) is the shared no-op of api.ts, returned at
// once; on loads sdk.ts, and with it the OpenTelemetry SDK, only then. The wiring imports this
// module (and the types it re-exports), never sdk.ts.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from 'pino';
import type { SpanAttributes } from './attributes.ts';
import {
  NOOP_SPAN_HANDLE,
  TRACING_OFF,
  type CheckSpan,
  type ChildSpanKind,
  type SpanHandle,
  type Tracing,
  type TracingHooks,
} from './api.ts';
import { resolveTracing, type Env, type TracingConfig, type TracingSettings } from './config.ts';

export * from './api.ts';
export type { AttributeKey, GrpcStatusName, SpanAttributes } from './attributes.ts';
export { tracingSchema, TracingConfigError, type TracingConfig } from './config.ts';

/**
 * Tracing as the config section and the environment say (config.ts). Off: TRACING_OFF, at once.
 * On: the OpenTelemetry SDK is loaded and the exporter set up; nothing is sent until a span ends.
 * Throws TracingConfigError for an OTEL_* variable that is set but wrong.
 */
export async function createTracing(
  config: TracingConfig | undefined,
  env: Env,
  log: Logger,
  hooks: TracingHooks = {},
): Promise<Tracing> {
  const resolved = resolveTracing(config, env);
  if (!resolved.enabled) {
    if (resolved.why === 'OTEL_SDK_DISABLED')
      log.info('tracing is enabled in the config but OTEL_SDK_DISABLED=true: no spans are recorded');
    return TRACING_OFF;
  }
  return startSdkTracing(resolved, log, hooks);
}

/** With settings already resolved (tests and benchmarks set them directly). */
export async function startSdkTracing(
  settings: TracingSettings,
  log: Logger,
  hooks: TracingHooks = {},
): Promise<Tracing> {
  const { createSdkTracing } = await import('./sdk.ts');
  return createSdkTracing(settings, log, hooks);
}

// Child spans (JWKS and discovery fetches, introspection calls, Redis round trips) are made deep in
// the credential and store code, which is handed no tracing object: they find the tracing of the
// Check they run under here. The storage is created by the first traced Check, so with tracing off
// it does not exist and childSpansOn() is one comparison; async context tracking is never started.
let checkTracing: AsyncLocalStorage<Tracing> | undefined;

/**
 * Runs `fn(arg)` as `span`'s Check: child spans made by it, across awaits, nest under `span`.
 * Not recording (tracing off, not sampled): `fn(arg)` directly, nothing allocated.
 */
export function runCheck<A, R>(tracing: Tracing, span: CheckSpan, fn: (arg: A) => R, arg: A): R {
  if (!span.recording) return fn(arg);
  checkTracing ??= new AsyncLocalStorage<Tracing>();
  return checkTracing.run(tracing, () => span.run(fn, arg));
}

/** Whether the caller runs under a recorded Check span; callers skip withChildSpan (and its closure) when not. */
export function childSpansOn(): boolean {
  return checkTracing !== undefined && checkTracing.getStore() !== undefined;
}

/**
 * `fn` inside a CLIENT span under the current Check span (Tracing.withChildSpan), or with a no-op
 * span when there is none (tracing off, not sampled, a background refresh).
 */
export function withChildSpan<T>(
  kind: ChildSpanKind,
  attributes: SpanAttributes | undefined,
  fn: (span: SpanHandle) => Promise<T>,
): Promise<T> {
  const tracing = checkTracing?.getStore();
  return tracing ? tracing.withChildSpan(kind, attributes, fn) : fn(NOOP_SPAN_HANDLE);
}

/** server.address / server.port of a URL, for a child span (the host only: never a path or query). */
export function serverAttributes(url: URL | string): SpanAttributes {
  const u = typeof url === 'string' ? new URL(url) : url;
  const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { 'server.address': u.hostname, 'server.port': port };
}
