// The tracing facade the Check path calls, and its no-op implementation (tracing off, the
// default): shared frozen objects, so with tracing off no OpenTelemetry module is loaded, no
// context manager is installed and a Check allocates nothing for tracing. The implementation with
// tracing on is sdk.ts. The interface takes only what the caller already has (the request's header
// map, the gRPC call metadata, the Decision), so what reaches a span is decided in sdk.ts, against
// attributes.ts, not by each caller.
import type { AttributeValue, GrpcStatusName, SpanAttributes } from './attributes.ts';

/** Lower-case header names to values, as the Check and forward-auth adapters build them. */
export type HeaderMap = Readonly<Record<string, string>>;

/** The Decision fields a span records (core/types.ts Decision has them all). */
export interface DecisionLike {
  readonly allowed: boolean;
  readonly status: number;
  readonly reason: string;
  readonly route?: string;
  readonly credential?: string;
  readonly identity?: { readonly method: string; readonly clientId?: string; readonly subject?: string };
}

/** grpc-js Metadata, or anything with its get(). */
export interface MetadataLike {
  get(key: string): ReadonlyArray<string | Buffer>;
}

/** The outbound calls a Check may wait for; each becomes a CLIENT span under the Check span. */
export type ChildSpanKind = 'jwks' | 'discovery' | 'introspection' | 'redis';

/** A span that takes allowlisted attributes only (attributes.ts); anything else is refused. */
export interface SpanHandle {
  /** Whether anything set is kept (false: tracing off, or this trace not sampled). */
  readonly recording: boolean;
  set(key: keyof SpanAttributes, value: AttributeValue): void;
}

export interface CheckSpan extends SpanHandle {
  /**
   * Runs `fn(arg)` with this span as the active Check span, so withChildSpan calls made by it
   * (across awaits) nest under it. Pass a function made once, not a new closure per Check.
   */
  run<A, R>(fn: (arg: A) => R, arg: A): R;
  /** Route, decision, status, reason, credential kind, client id; user.id only with tracing.record_user_id. */
  setDecision(d: DecisionLike): void;
  /**
   * Ends the span. gRPC: the status the call ended with (default OK: a decided Check, allow or
   * deny, is an OK call). Forward-auth: the HTTP status written (default the decision's).
   */
  end(status?: GrpcStatusName | number): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /**
   * A SERVER span for one ext_authz Check. The parent is read from `metadata` (the gRPC call's
   * metadata, where Envoy puts its own ext_authz span's context) and, when that has none, from
   * `headers` (the CheckRequest's copy of the client request's headers).
   */
  startCheckSpan(headers: HeaderMap, metadata?: HeaderMap | MetadataLike): CheckSpan;
  /** A SERVER span for one forward-auth call; the parent is read from the call's own headers. */
  startForwardAuthSpan(headers: HeaderMap, method: string, route: string): CheckSpan;
  /**
   * Runs `fn` inside a CLIENT span under the active Check span. Without one (tracing off, not
   * sampled, or called outside a Check such as a background refresh), `fn` runs with a no-op span.
   * A rejection marks the span as an error with error.type (the error's name or code, never its
   * message, which can hold a URL or a body) and is passed on unchanged.
   */
  withChildSpan<T>(
    kind: ChildSpanKind,
    attributes: SpanAttributes | undefined,
    fn: (span: SpanHandle) => Promise<T>,
  ): Promise<T>;
  /** Exports what is queued, waiting at most `timeoutMs`; what is still queued then is lost. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface TracingHooks {
  /**
   * Spans lost: `queue_full` (the export queue was full when the span ended) or `export_failed`
   * (the collector refused, failed or did not answer in time). For a counter metric.
   */
  onSpansDropped?(count: number, reason: 'queue_full' | 'export_failed'): void;
  /** Spans the collector accepted. */
  onSpansExported?(count: number): void;
}

const NOOP_SPAN: CheckSpan = Object.freeze({
  recording: false,
  set(): void {},
  run<A, R>(fn: (arg: A) => R, arg: A): R {
    return fn(arg);
  },
  setDecision(): void {},
  end(): void {},
});

/** Tracing off: every call is a no-op on shared objects. */
export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  startCheckSpan: () => NOOP_SPAN,
  startForwardAuthSpan: () => NOOP_SPAN,
  withChildSpan: <T>(
    _kind: ChildSpanKind,
    _attributes: SpanAttributes | undefined,
    fn: (span: SpanHandle) => Promise<T>,
  ): Promise<T> => fn(NOOP_SPAN),
  shutdown: async (): Promise<void> => {},
});

/** The no-op span, for callers that need a SpanHandle outside a Check. */
export const NOOP_SPAN_HANDLE: SpanHandle = NOOP_SPAN;
