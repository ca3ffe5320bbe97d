// The `tracing:` config section and how it combines with the standard OTEL_* environment variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
//
// Precedence, for every setting: the config file when the option is set there, else the OTEL_*
// variable when it is set and not empty, else the default. Two exceptions, both towards "off":
//   - only `tracing.enabled: true` turns tracing on. Platforms put OTEL_* variables on every pod
//     (the OpenTelemetry Operator does); an OTEL_EXPORTER_OTLP_ENDPOINT alone must not start
//     exporting spans from an authorization service.
//   - OTEL_SDK_DISABLED=true turns it off whatever the config says: the operator's kill switch.
// A variable that is set but wrong is an error naming the variable, never silently ignored (the
// OTel spec lets an SDK warn and fall back; here a sampler typo would mean sampling everything).
//
// This module imports no OpenTelemetry package: with tracing off none is ever loaded.
import { z } from 'zod';

/** Trace-context formats read from a Check, in order of precedence when a request carries several. */
export const PROPAGATORS = ['w3c', 'b3'] as const;
export type Propagator = (typeof PROPAGATORS)[number];

/** OTLP/HTTP encodings (https://opentelemetry.io/docs/specs/otlp/#otlphttp). OTLP/gRPC is not offered. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** Bounds shared by the schema and the OTEL_BSP_* variables. */
const LIMITS = {
  max_queue_size: { min: 1, max: 65536, env: 'OTEL_BSP_MAX_QUEUE_SIZE' },
  max_export_batch_size: { min: 1, max: 65536, env: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE' },
  schedule_delay_ms: { min: 1, max: 60_000, env: 'OTEL_BSP_SCHEDULE_DELAY' },
  export_timeout_ms: { min: 1, max: 60_000, env: 'OTEL_BSP_EXPORT_TIMEOUT' },
} as const;
type BatchOption = keyof typeof LIMITS;

const DEFAULTS = {
  endpoint: 'http://localhost:4318/v1/traces',
  protocol: 'http/protobuf' as OtlpProtocol,
  sampleRatio: 1,
  parentBased: true,
  serviceName: 'portcullis',
  propagators: ['w3c', 'b3'] as Propagator[],
  // The BatchSpanProcessor's own defaults, except the export timeout: 30 s there, 10 s here (the
  // OTLP exporter's default), so a hanging collector holds the one export slot for less long.
  max_queue_size: 2048,
  max_export_batch_size: 512,
  schedule_delay_ms: 5000,
  export_timeout_ms: 10_000,
};

const intOption = (name: BatchOption) => z.number().int().min(LIMITS[name].min).max(LIMITS[name].max).optional();

function endpointProblem(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return 'must be an http:// or https:// URL (OTLP/HTTP; OTLP/gRPC is not supported)';
  // The endpoint is printed in logs; collector credentials belong in OTEL_EXPORTER_OTLP_HEADERS.
  if (u.username !== '' || u.password !== '')
    return 'must not carry a user or password; send collector credentials with OTEL_EXPORTER_OTLP_HEADERS';
  if (u.search !== '' || u.hash !== '') return 'must not have a query or fragment';
  return undefined;
}

export const tracingSchema = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'export an OpenTelemetry span for every Check (and forward-auth call) over OTLP/HTTP; only this turns tracing on (OTEL_SDK_DISABLED=true turns it off)',
      ),
    otlp_endpoint: z
      .string()
      .superRefine((v, ctx) => {
        const problem = endpointProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe(
        'OTLP/HTTP traces URL of the collector; a URL without a path gets /v1/traces (http://otel-collector:4318 -> http://otel-collector:4318/v1/traces). Unset: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://localhost:4318/v1/traces',
      ),
    protocol: z
      .enum(OTLP_PROTOCOLS)
      .optional()
      .describe(
        'OTLP/HTTP encoding. Unset: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf',
      ),
    sample_ratio: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe(
        'share of Checks traced, 0 to 1, by trace id (the same trace gets the same answer everywhere). Unset: from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, else 1',
      ),
    parent_based: z
      .boolean()
      .optional()
      .describe(
        "true: a Check whose caller sent a trace context follows the caller's sampled flag, and sample_ratio applies to Checks without one; false: sample_ratio applies to every Check. Unset: from OTEL_TRACES_SAMPLER (parentbased_*), else true",
      ),
    service_name: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe(
        'service.name of the spans. Unset: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else portcullis',
      ),
    resource_attributes: z
      .record(
        z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'an attribute name: letters, digits, . _ -'),
        z.string().max(1024),
      )
      .optional()
      .describe(
        'more resource attributes (e.g. deployment.environment.name: prod); each wins over the same key in OTEL_RESOURCE_ATTRIBUTES',
      ),
    propagators: z
      .array(z.enum(PROPAGATORS))
      .refine((a) => new Set(a).size === a.length, 'each propagator at most once')
      .optional()
      .describe(
        'trace-context formats read from the Check, first listed wins when a request carries several: w3c (traceparent / tracestate), b3 (b3 single header and x-b3-* headers). [] joins no caller trace. Unset: OTEL_PROPAGATORS (tracecontext, b3, b3multi, baggage, none), else [w3c, b3]',
      ),
    record_user_id: z
      .boolean()
      .default(false)
      .describe(
        "put the verified subject on the Check span as user.id. Off by default: a subject is personal data, and the trace backend's access rules are not Portcullis's",
      ),
    batch: z
      .object({
        max_queue_size: intOption('max_queue_size').describe(
          'finished spans held for export; when full, new spans are dropped (and counted). Unset: OTEL_BSP_MAX_QUEUE_SIZE, else 2048',
        ),
        max_export_batch_size: intOption('max_export_batch_size').describe(
          'spans per export request, at most max_queue_size. Unset: OTEL_BSP_MAX_EXPORT_BATCH_SIZE, else 512',
        ),
        schedule_delay_ms: intOption('schedule_delay_ms').describe(
          'longest wait before a partly filled batch is sent. Unset: OTEL_BSP_SCHEDULE_DELAY, else 5000',
        ),
        export_timeout_ms: intOption('export_timeout_ms').describe(
          'an export not answered within this is abandoned and its spans dropped. Unset: OTEL_BSP_EXPORT_TIMEOUT, else OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT, else 10000',
        ),
      })
      .strict()
      .optional()
      .describe('the batch span processor: spans are exported off the Check path, a bounded queue at a time'),
  })
  .strict()
  .describe('OpenTelemetry tracing (docs/tracing.md); off by default');

export type TracingConfig = z.output<typeof tracingSchema>;
/** The section as written in a config file (every field optional). */
export type TracingConfigInput = z.input<typeof tracingSchema>;

/** Where a resolved value came from: `config`, `env:NAME` or `default`. Printed once at start. */
export type Source = 'config' | `env:${string}` | 'default';

export interface TracingSettings {
  enabled: true;
  /** Full OTLP/HTTP traces URL. */
  endpoint: string;
  protocol: OtlpProtocol;
  sampleRatio: number;
  parentBased: boolean;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  propagators: Propagator[];
  recordUserId: boolean;
  batch: { maxQueueSize: number; maxExportBatchSize: number; scheduleDelayMs: number; exportTimeoutMs: number };
  sources: Record<'endpoint' | 'protocol' | 'sampler' | 'serviceName' | 'propagators' | 'batch', Source>;
}

export type ResolvedTracing = { enabled: false; why: 'config' | 'OTEL_SDK_DISABLED' } | TracingSettings;

export type Env = Readonly<Record<string, string | undefined>>;

/** An OTEL_* variable or a combination of settings that cannot work; the message names it and says what to do. */
export class TracingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TracingConfigError';
  }
}

/** The OTel spec treats an empty variable as unset. */
function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** A value as it may appear in an error: bounded, so a huge or odd variable does not flood the log. */
function shown(v: string): string {
  return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
}

/** A URL with an empty path gets `v1/traces`; any other path is used as written. */
function tracesUrl(base: string): string {
  const u = new URL(base);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.href;
}

function envEndpoint(env: Env): { url: string; source: Source } | undefined {
  for (const [name, signalSpecific] of [
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', true],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', false],
  ] as const) {
    const v = envValue(env, name);
    if (v === undefined) continue;
    const problem = endpointProblem(v);
    // Not the value itself: an endpoint with credentials in it is exactly what is refused here.
    if (problem) throw new TracingConfigError(`${name} ${problem}`);
    // The spec: the signal-specific variable is the URL as is; the general one is a base URL
    // to which /v1/traces is appended (after its own path).
    if (signalSpecific) return { url: new URL(v).href, source: `env:${name}` };
    const u = new URL(v);
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
    return { url: u.href, source: `env:${name}` };
  }
  return undefined;
}

function envProtocol(env: Env): { protocol: OtlpProtocol; source: Source } | undefined {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const v = envValue(env, name);
    if (v === undefined) continue;
    if ((OTLP_PROTOCOLS as readonly string[]).includes(v))
      return { protocol: v as OtlpProtocol, source: `env:${name}` };
    const hint =
      v === 'grpc' ? " (OTLP/gRPC is not supported: point it at the collector's OTLP/HTTP port, usually 4318)" : '';
    throw new TracingConfigError(`${name}=${shown(v)} is not one of ${OTLP_PROTOCOLS.join(', ')}${hint}`);
  }
  return undefined;
}

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

function envSampler(env: Env): { ratio: number; parentBased: boolean; source: Source } | undefined {
  const name = envValue(env, 'OTEL_TRACES_SAMPLER');
  if (name === undefined) return undefined;
  if (!SAMPLERS.includes(name)) {
    throw new TracingConfigError(
      `OTEL_TRACES_SAMPLER=${shown(name)} is not one of ${SAMPLERS.join(', ')} (or set tracing.sample_ratio and tracing.parent_based in the config)`,
    );
  }
  const parentBased = name.startsWith('parentbased_');
  const kind = name.replace('parentbased_', '');
  if (kind === 'always_on') return { ratio: 1, parentBased, source: 'env:OTEL_TRACES_SAMPLER' };
  if (kind === 'always_off') return { ratio: 0, parentBased, source: 'env:OTEL_TRACES_SAMPLER' };
  const arg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (arg === undefined) return { ratio: 1, parentBased, source: 'env:OTEL_TRACES_SAMPLER' };
  const ratio = Number(arg);
  if (!/^\s*[0-9.eE+-]+\s*$/.test(arg) || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new TracingConfigError(
      `OTEL_TRACES_SAMPLER_ARG=${shown(arg)} is not a ratio between 0 and 1 (for OTEL_TRACES_SAMPLER=${name})`,
    );
  }
  return { ratio, parentBased, source: 'env:OTEL_TRACES_SAMPLER' };
}

function envPropagators(env: Env): Propagator[] | undefined {
  const v = envValue(env, 'OTEL_PROPAGATORS');
  if (v === undefined) return undefined;
  const out: Propagator[] = [];
  for (const item of v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    if (item === 'none') return [];
    // Baggage is not read: Portcullis records nothing from it and calls nothing that would carry it.
    if (item === 'baggage') continue;
    const p: Propagator | undefined =
      item === 'tracecontext' ? 'w3c' : item === 'b3' || item === 'b3multi' ? 'b3' : undefined;
    if (!p)
      throw new TracingConfigError(
        `OTEL_PROPAGATORS has ${shown(item)}: Portcullis reads tracecontext, b3, b3multi (baggage and none are accepted too)`,
      );
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/**
 * OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs separated by commas, values percent-encoded
 * (https://opentelemetry.io/docs/specs/otel/resource/sdk/#specifying-resource-information-via-an-environment-variable).
 */
function envResourceAttributes(env: Env): Record<string, string> {
  const v = envValue(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const pair of v.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(key)) {
      throw new TracingConfigError(
        'OTEL_RESOURCE_ATTRIBUTES must be key=value pairs separated by commas (keys: letters, digits, . _ -)',
      );
    }
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      throw new TracingConfigError(`OTEL_RESOURCE_ATTRIBUTES: the value of ${key} is not valid percent-encoding`);
    }
    out[key] = value;
  }
  return out;
}

function batchOption(cfg: TracingConfig['batch'], name: BatchOption, env: Env): { value: number; source: Source } {
  const fromConfig = cfg?.[name];
  if (fromConfig !== undefined) return { value: fromConfig, source: 'config' };
  const names =
    name === 'export_timeout_ms'
      ? [LIMITS[name].env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']
      : [LIMITS[name].env];
  for (const envName of names) {
    const raw = envValue(env, envName);
    if (raw === undefined) continue;
    const n = Number(raw);
    const { min, max } = LIMITS[name];
    if (!/^\d+$/.test(raw) || n < min || n > max) {
      throw new TracingConfigError(
        `${envName}=${shown(raw)} must be a whole number from ${min} to ${max} (or set tracing.batch.${name} in the config)`,
      );
    }
    return { value: n, source: `env:${envName}` };
  }
  return { value: DEFAULTS[name], source: 'default' };
}

/**
 * The settings tracing runs with: the config section (validated by tracingSchema), filled in from
 * the environment. Throws TracingConfigError for a variable that is set but wrong; with tracing
 * off, no variable is read but OTEL_SDK_DISABLED, so a wrong one cannot stop a start.
 */
export function resolveTracing(config: TracingConfig | undefined, env: Env): ResolvedTracing {
  if (!config?.enabled) return { enabled: false, why: 'config' };
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { enabled: false, why: 'OTEL_SDK_DISABLED' };

  const fromEnvEndpoint = config.otlp_endpoint === undefined ? envEndpoint(env) : undefined;
  const endpoint =
    config.otlp_endpoint !== undefined
      ? { url: tracesUrl(config.otlp_endpoint), source: 'config' as Source }
      : (fromEnvEndpoint ?? { url: DEFAULTS.endpoint, source: 'default' as Source });

  const protocol =
    config.protocol !== undefined
      ? { protocol: config.protocol, source: 'config' as Source }
      : (envProtocol(env) ?? { protocol: DEFAULTS.protocol, source: 'default' as Source });

  // The sampler is one setting in the environment (OTEL_TRACES_SAMPLER) and two in the config;
  // a config value replaces its half and the variable still supplies the other.
  const sampler = config.sample_ratio === undefined || config.parent_based === undefined ? envSampler(env) : undefined;
  const sampleRatio = config.sample_ratio ?? sampler?.ratio ?? DEFAULTS.sampleRatio;
  const parentBased = config.parent_based ?? sampler?.parentBased ?? DEFAULTS.parentBased;
  const samplerSource: Source =
    config.sample_ratio !== undefined && config.parent_based !== undefined
      ? 'config'
      : (sampler?.source ??
        (config.sample_ratio !== undefined || config.parent_based !== undefined ? 'config' : 'default'));

  const envResource = envResourceAttributes(env);
  const envServiceName = envValue(env, 'OTEL_SERVICE_NAME');
  const serviceName =
    config.service_name !== undefined
      ? { name: config.service_name, source: 'config' as Source }
      : envServiceName !== undefined
        ? { name: envServiceName, source: 'env:OTEL_SERVICE_NAME' as Source }
        : envResource['service.name'] !== undefined
          ? { name: envResource['service.name'], source: 'env:OTEL_RESOURCE_ATTRIBUTES' as Source }
          : { name: DEFAULTS.serviceName, source: 'default' as Source };
  const resourceAttributes = { ...envResource, ...config.resource_attributes, 'service.name': serviceName.name };

  const envProps = config.propagators === undefined ? envPropagators(env) : undefined;
  const propagators = config.propagators ?? envProps ?? DEFAULTS.propagators;
  const propagatorSource: Source =
    config.propagators !== undefined ? 'config' : envProps !== undefined ? 'env:OTEL_PROPAGATORS' : 'default';

  const queue = batchOption(config.batch, 'max_queue_size', env);
  const batchSize = batchOption(config.batch, 'max_export_batch_size', env);
  // Only the default batch size follows a smaller queue; one that was set is an error below.
  if (batchSize.source === 'default') batchSize.value = Math.min(batchSize.value, queue.value);
  const delay = batchOption(config.batch, 'schedule_delay_ms', env);
  const timeout = batchOption(config.batch, 'export_timeout_ms', env);
  if (batchSize.value > queue.value) {
    throw new TracingConfigError(
      `tracing.batch.max_export_batch_size (${batchSize.value}, from ${batchSize.source}) is larger than max_queue_size (${queue.value}, from ${queue.source}): a batch is taken from the queue`,
    );
  }
  const batchSources = [queue, batchSize, delay, timeout].map((o) => o.source);
  const batchSource: Source = batchSources.find((s) => s !== 'default') ?? 'default';

  return {
    enabled: true,
    endpoint: endpoint.url,
    protocol: protocol.protocol,
    sampleRatio,
    parentBased,
    serviceName: serviceName.name,
    resourceAttributes,
    propagators: [...propagators],
    recordUserId: config.record_user_id,
    batch: {
      maxQueueSize: queue.value,
      maxExportBatchSize: batchSize.value,
      scheduleDelayMs: delay.value,
      exportTimeoutMs: timeout.value,
    },
    sources: {
      endpoint: endpoint.source,
      protocol: protocol.source,
      sampler: samplerSource,
      serviceName: serviceName.source,
      propagators: propagatorSource,
      batch: batchSource,
    },
  };
}
