// Creating tracing from the config: off (the default) is the shared no-op of api.ts, returned at
// once; on loads sdk.ts, and with it the OpenTelemetry SDK, only then. The wiring imports this
// module (and the types it re-exports), never sdk.ts.
import type { Logger } from 'pino';
import { TRACING_OFF, type Tracing, type TracingHooks } from './api.ts';
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
