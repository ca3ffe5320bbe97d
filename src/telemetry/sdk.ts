// Tracing on: the facade of tracing.ts over the OpenTelemetry JS SDK (2.x line: Node 20). Loaded by
// tracing.ts only when tracing is enabled, so with tracing off none of these modules is read.
//
// Nothing here is registered globally (no global tracer provider, propagator or context manager):
// the active Check span lives in this instance's own AsyncLocalStorage, and the parent is read by
// calling the propagators directly. Two instances (a test, a reload) cannot interfere, and no other
// library's use of @opentelemetry/api changes what Portcullis records.
//
// Spans leave through a BatchSpanProcessor: span.end() puts the span in a bounded queue and
// returns; a timer exports batches off the Check path, one export at a time, each abandoned after
// the export timeout. A collector that is down, slow or failing therefore costs a Check nothing:
// the queue fills, further spans are dropped and counted (onSpansDropped), and a warning is
// logged at most once a minute.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  createNoopMeter,
  trace,
  type Context,
  type Counter,
  type Meter,
  type MeterProvider,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3Propagator } from '@opentelemetry/propagator-b3';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { ATTR_RPC_METHOD, ATTR_RPC_SYSTEM_NAME, RPC_SYSTEM_NAME_VALUE_GRPC } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { redactUrl } from '../plumbing/redact-url.ts';
import {
  allowedAttribute,
  GRPC_SERVER_ERRORS,
  type AttributeKey,
  type AttributeValue,
  type GrpcStatusName,
  type SpanAttributes,
} from './attributes.ts';
import type { Propagator, TracingSettings } from './config.ts';
import {
  NOOP_SPAN_HANDLE,
  type ChildSpanKind,
  type CheckSpan,
  type DecisionLike,
  type HeaderMap,
  type MetadataLike,
  type SpanHandle,
  type Tracing,
  type TracingHooks,
} from './api.ts';

/** The gRPC method Envoy calls; the span name and rpc.method (semconv docs/rpc/rpc-spans.md, "Name"). */
export const CHECK_METHOD = 'envoy.service.auth.v3.Authorization/Check';

const HEADER_GETTER: TextMapGetter<HeaderMap> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === 'string' ? v : undefined;
  },
};

const METADATA_GETTER: TextMapGetter<MetadataLike> = {
  // Propagators ask for the names they read; listing every key is only needed by others.
  keys: () => [],
  get: (carrier, key) => {
    const values = carrier.get(key);
    const first = values[0];
    return typeof first === 'string' ? first : undefined;
  },
};

const PROPAGATOR_IMPLS: Record<Propagator, () => TextMapPropagator> = {
  w3c: () => new W3CTraceContextPropagator(),
  // Extracts both the single `b3` header and the x-b3-* headers.
  b3: () => new B3Propagator(),
};

const CHILD_SPANS: Record<ChildSpanKind, { name: string; attributes: SpanAttributes }> = {
  jwks: { name: 'GET jwks', attributes: { 'http.request.method': 'GET' } },
  discovery: { name: 'GET openid-configuration', attributes: { 'http.request.method': 'GET' } },
  introspection: { name: 'POST introspection', attributes: { 'http.request.method': 'POST' } },
  redis: { name: 'redis', attributes: { 'db.system.name': 'redis' } },
};

/**
 * The processor's self-observability counter (semconv docs/otel/sdk-metrics.md); error.type
 * "queue_full" or the export error's name.
 */
const PROCESSED_SPANS_METRIC = 'otel.sdk.processor.span.processed';

const DROP_WARNING_INTERVAL_MS = 60_000;

/**
 * A MeterProvider for the BatchSpanProcessor's `selfObsMeterProvider` option that only listens to
 * the processed-spans counter: the processor's own account of which spans it dropped (queue full)
 * and which exports failed, without a metrics SDK.
 */
function processorCounters(onProcessed: (count: number, errorType: unknown) => void): MeterProvider {
  const noop = createNoopMeter();
  const counter = {
    add: (count: number, attributes?: Record<string, unknown>) => onProcessed(count, attributes?.['error.type']),
  } as Counter;
  const meter: Meter = Object.create(noop) as Meter;
  meter.createCounter = (name: string, options?: Parameters<Meter['createCounter']>[1]) =>
    name === PROCESSED_SPANS_METRIC ? counter : noop.createCounter(name, options);
  return { getMeter: () => meter };
}

/**
 * The exporter, started in a task of its own. The BatchSpanProcessor starts an export from inside
 * span.end() when the queue reaches a batch; the exporter then serializes the whole batch (some µs
 * per span) and opens the request right there, so one Check in every batch paid for all of it.
 */
class DeferredExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(spans: Parameters<SpanExporter['export']>[0], done: Parameters<SpanExporter['export']>[1]): void {
    setImmediate(() => this.inner.export(spans, done));
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** error.type for a failed child call: the error's code (ECONNREFUSED) or class name, never its message. */
function errorType(err: unknown): string {
  if (err !== null && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && /^[A-Za-z0-9_.]{1,64}$/.test(name)) return name;
  }
  return '_OTHER';
}

function safeKeyForLog(key: string): string {
  return /^[A-Za-z0-9_.]{1,64}$/.test(key) ? key : '(not a valid attribute name)';
}

class SdkTracing implements Tracing {
  readonly enabled = true;
  /** The active Check span, across the awaits of the code run by CheckSpan.run. */
  readonly active = new AsyncLocalStorage<Span>();
  private readonly tracer;
  private readonly propagators: TextMapPropagator[];
  private readonly warnedKeys = new Set<string>();
  private droppedSinceWarning = 0;
  private lastDropWarning = -Infinity;
  private stopped = false;

  constructor(
    private readonly settings: TracingSettings,
    private readonly provider: TracerProvider,
    private readonly log: Logger,
  ) {
    this.tracer = provider.getTracer('portcullis');
    this.propagators = settings.propagators.map((p) => PROPAGATOR_IMPLS[p]());
  }

  get recordUserId(): boolean {
    return this.settings.recordUserId;
  }

  startCheckSpan(headers: HeaderMap, metadata?: HeaderMap | MetadataLike): CheckSpan {
    const parent = this.parentOf(metadata, headers);
    const span = this.tracer.startSpan(CHECK_METHOD, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      span.setAttribute(ATTR_RPC_SYSTEM_NAME, RPC_SYSTEM_NAME_VALUE_GRPC);
      span.setAttribute(ATTR_RPC_METHOD, CHECK_METHOD);
    }
    return new SdkCheckSpan(this, span, 'grpc');
  }

  startForwardAuthSpan(headers: HeaderMap, method: string, route: string): CheckSpan {
    const parent = this.parentOf(undefined, headers);
    // HTTP server span name: "{method} {http.route}" (semconv docs/http/http-spans.md, "Name").
    const knownMethod = allowedAttribute('http.request.method', method) ? method : '_OTHER';
    const knownRoute = allowedAttribute('http.route', route) ? route : undefined;
    const name = knownMethod === '_OTHER' ? 'HTTP' : knownRoute ? `${knownMethod} ${knownRoute}` : knownMethod;
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    const handle = new SdkCheckSpan(this, span, 'http');
    if (span.isRecording()) {
      handle.set('http.request.method', knownMethod);
      if (knownRoute) handle.set('http.route', knownRoute);
    }
    return handle;
  }

  async withChildSpan<T>(
    kind: ChildSpanKind,
    attributes: SpanAttributes | undefined,
    fn: (span: SpanHandle) => Promise<T>,
  ): Promise<T> {
    const parent = this.active.getStore();
    if (parent === undefined || !parent.isRecording()) return fn(NOOP_SPAN_HANDLE);
    const spec = CHILD_SPANS[kind];
    const operation = kind === 'redis' ? attributes?.['db.operation.name'] : undefined;
    // A database span is named after its operation (semconv docs/db/database-spans.md, "Name").
    const name =
      typeof operation === 'string' && allowedAttribute('db.operation.name', operation) ? operation : spec.name;
    const span = this.tracer.startSpan(name, { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, parent));
    const handle = new SdkSpanHandle(this, span);
    handle.setAll(spec.attributes);
    if (attributes) handle.setAll(attributes);
    try {
      return await fn(handle);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      handle.set('error.type', errorType(err));
      throw err;
    } finally {
      span.end();
    }
  }

  async shutdown(timeoutMs = 2000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const done = this.provider.shutdown().then(
      () => 'done' as const,
      () => 'failed' as const,
    );
    const result = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.log.warn(
        { endpoint: redactUrl(this.settings.endpoint), timeout_ms: timeoutMs },
        'tracing: the collector did not take the last spans before shutdown; they are lost (is the collector up at this endpoint?)',
      );
    }
  }

  /** The caller's trace context: from the first carrier that has one, by the propagators in order of precedence. */
  private parentOf(first: HeaderMap | MetadataLike | undefined, second: HeaderMap): Context {
    if (first !== undefined) {
      const ctx =
        typeof first.get === 'function'
          ? this.extract(first as MetadataLike, METADATA_GETTER)
          : this.extract(first as HeaderMap, HEADER_GETTER);
      if (ctx !== ROOT_CONTEXT) return ctx;
    }
    return this.extract(second, HEADER_GETTER);
  }

  private extract<C>(carrier: C, getter: TextMapGetter<C>): Context {
    for (const p of this.propagators) {
      const ctx = p.extract(ROOT_CONTEXT, carrier, getter);
      if (trace.getSpanContext(ctx) !== undefined) return ctx;
    }
    return ROOT_CONTEXT;
  }

  /** Called by the handles: records an allowlisted attribute, refuses anything else. */
  setAttribute(span: Span, key: string, value: unknown): void {
    if (key === 'user.id' && !this.settings.recordUserId)
      return this.refuse(key, 'user.id is recorded only with tracing.record_user_id: true');
    if (allowedAttribute(key, value)) span.setAttribute(key, value);
    else
      this.refuse(
        key,
        'not in the attribute allowlist (src/telemetry/attributes.ts), or its value is outside the allowed form',
      );
  }

  private refuse(key: string, why: string): void {
    const shown = safeKeyForLog(key);
    if (this.warnedKeys.has(shown) || this.warnedKeys.size >= 32) return;
    this.warnedKeys.add(shown);
    // The key only, never the value: the value is what may not be recorded.
    this.log.warn({ attribute: shown }, `tracing: a span attribute was not recorded: ${why}`);
  }

  /** From the processor's counter: spans exported, or dropped and why. */
  processed(count: number, errorTypeValue: unknown, hooks: TracingHooks): void {
    if (errorTypeValue === undefined) {
      hooks.onSpansExported?.(count);
      return;
    }
    const reason = errorTypeValue === 'queue_full' ? 'queue_full' : 'export_failed';
    hooks.onSpansDropped?.(count, reason);
    this.droppedSinceWarning += count;
    const now = Date.now();
    if (now - this.lastDropWarning < DROP_WARNING_INTERVAL_MS) return;
    this.lastDropWarning = now;
    const errorName =
      typeof errorTypeValue === 'string' && /^[A-Za-z0-9_.]{1,64}$/.test(errorTypeValue) ? errorTypeValue : undefined;
    this.log.warn(
      { endpoint: redactUrl(this.settings.endpoint), dropped: this.droppedSinceWarning, reason, error_type: errorName },
      reason === 'queue_full'
        ? 'tracing: spans dropped, the export queue is full (the collector is down, slow or far behind); Checks are not affected. Next warning in a minute at the earliest'
        : 'tracing: spans dropped, the collector refused or did not answer the export; Checks are not affected. Next warning in a minute at the earliest',
    );
    this.droppedSinceWarning = 0;
  }
}

class SdkSpanHandle implements SpanHandle {
  constructor(
    protected readonly owner: SdkTracing,
    protected readonly span: Span,
  ) {}

  get recording(): boolean {
    return this.span.isRecording();
  }

  set(key: AttributeKey, value: AttributeValue): void {
    if (this.span.isRecording()) this.owner.setAttribute(this.span, key, value);
  }

  setAll(attributes: SpanAttributes): void {
    if (!this.span.isRecording()) return;
    for (const key of Object.keys(attributes))
      this.owner.setAttribute(this.span, key, (attributes as Record<string, unknown>)[key]);
  }
}

class SdkCheckSpan extends SdkSpanHandle implements CheckSpan {
  private decisionStatus: number | undefined;

  constructor(
    owner: SdkTracing,
    span: Span,
    private readonly transport: 'grpc' | 'http',
  ) {
    super(owner, span);
  }

  run<A, R>(fn: (arg: A) => R, arg: A): R {
    // An unsampled Check has no child spans: nothing to make active.
    return this.span.isRecording() ? this.owner.active.run(this.span, fn, arg) : fn(arg);
  }

  setDecision(d: DecisionLike): void {
    this.decisionStatus = d.status;
    if (!this.span.isRecording()) return;
    this.set('portcullis.decision', d.allowed ? 'allow' : 'deny');
    this.set('portcullis.status', d.status);
    this.set('portcullis.reason', d.reason);
    if (d.route !== undefined) this.set('portcullis.route', d.route);
    const credential = d.credential ?? d.identity?.method;
    if (credential !== undefined) this.set('portcullis.credential', credential);
    if (d.identity?.clientId !== undefined) this.set('portcullis.client_id', d.identity.clientId);
    if (this.owner.recordUserId && d.identity?.subject !== undefined) this.set('user.id', d.identity.subject);
  }

  end(status?: GrpcStatusName | number): void {
    if (this.span.isRecording()) {
      if (this.transport === 'grpc') {
        const code = typeof status === 'string' ? status : 'OK';
        this.set('rpc.status_code', code);
        if (GRPC_SERVER_ERRORS.has(code)) {
          this.span.setStatus({ code: SpanStatusCode.ERROR });
          this.set('error.type', code);
        }
      } else {
        const code = typeof status === 'number' ? status : (this.decisionStatus ?? 500);
        this.set('http.response.status_code', code);
        // Server spans: 5xx is an error, 4xx is the client's (semconv docs/http/http-spans.md, "Status").
        if (code >= 500) {
          this.span.setStatus({ code: SpanStatusCode.ERROR });
          this.set('error.type', String(code));
        }
      }
    }
    this.span.end();
  }
}

export async function createSdkTracing(settings: TracingSettings, log: Logger, hooks: TracingHooks): Promise<Tracing> {
  const { OTLPTraceExporter } =
    settings.protocol === 'http/json'
      ? await import('@opentelemetry/exporter-trace-otlp-http')
      : await import('@opentelemetry/exporter-trace-otlp-proto');
  const exporter = new DeferredExporter(
    new OTLPTraceExporter({ url: settings.endpoint, timeoutMillis: settings.batch.exportTimeoutMs }),
  );
  const root: Sampler = new TraceIdRatioBasedSampler(settings.sampleRatio);
  let tracing: SdkTracing | undefined;
  const processor = new BatchSpanProcessor({
    exporter,
    maxQueueSize: settings.batch.maxQueueSize,
    maxExportBatchSize: settings.batch.maxExportBatchSize,
    scheduledDelayMillis: settings.batch.scheduleDelayMs,
    // A little longer than the exporter's own timeout, so a hanging export ends with the
    // exporter's failure callback, which is where its spans are counted as dropped.
    exportTimeoutMillis: settings.batch.exportTimeoutMs + 1000,
    selfObsMeterProvider: processorCounters((count, type) => tracing?.processed(count, type, hooks)),
  });
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes(settings.resourceAttributes)),
    sampler: settings.parentBased ? new ParentBasedSampler({ root }) : root,
    spanProcessors: [processor],
  });
  tracing = new SdkTracing(settings, provider, log);
  log.info(
    {
      endpoint: redactUrl(settings.endpoint),
      protocol: settings.protocol,
      sample_ratio: settings.sampleRatio,
      parent_based: settings.parentBased,
      propagators: settings.propagators,
      service_name: settings.serviceName,
      sources: settings.sources,
    },
    'tracing on: a span per Check, exported over OTLP/HTTP',
  );
  return tracing;
}
