// The only span attributes Portcullis ever records, each with the values it may take. The tracing
// facade refuses any other key and any value outside its rule, so a token, key, claim or header
// value cannot reach a span by mistake: every string rule is either a fixed set or a short, plain
// form that identifiers take and secrets are kept out of by design (route names are config,
// reasons are code constants, client ids are identifiers a verified credential names).
//
// Names follow the OpenTelemetry semantic conventions 1.45.0 where one exists
// (https://github.com/open-telemetry/semantic-conventions/tree/v1.45.0/docs): RPC server spans
// (docs/rpc/rpc-spans.md, docs/rpc/grpc.md: rpc.system.name, rpc.method, rpc.status_code), HTTP
// server and client spans (docs/http/http-spans.md), database client spans (docs/db/redis.md:
// db.system.name, db.operation.name; never db.query.text), error.type, server.address/port and
// user.id (docs/registry/attributes/user.md, recorded only with tracing.record_user_id). The
// decision itself has no convention: it is under portcullis.*.
import { CREDENTIAL_KIND_NAMES } from '../core/types.ts';

export type AttributeValue = string | number | boolean;
type Rule = (v: AttributeValue) => boolean;

/** gRPC status names (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), as rpc.status_code takes them. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];

/** Server-side gRPC statuses that mark the span as an error (semconv docs/rpc/grpc.md, "gRPC Status"). */
export const GRPC_SERVER_ERRORS: ReadonlySet<string> = new Set([
  'UNKNOWN',
  'DEADLINE_EXCEEDED',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
]);

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', '_OTHER'];

const oneOf =
  (values: readonly string[]): Rule =>
  (v) =>
    typeof v === 'string' && values.includes(v);
const pattern =
  (re: RegExp): Rule =>
  (v) =>
    typeof v === 'string' && re.test(v);
const intIn =
  (min: number, max: number): Rule =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

// Visible ASCII without spaces or quotes, bounded: identifiers, never free text. A JWT fits this
// form too, which is why it is not enough alone: what may be put in these keys is decided in
// tracing.ts (from the Decision's own fields), never taken from a request.
const IDENTIFIER = /^[\x21-\x7e]{1,256}$/;

export const ATTRIBUTE_RULES = {
  // The Check span, gRPC (semconv rpc).
  'rpc.system.name': oneOf(['grpc']),
  'rpc.method': oneOf(['envoy.service.auth.v3.Authorization/Check']),
  'rpc.status_code': oneOf(GRPC_STATUS_NAMES),
  // The forward-auth span (semconv http server) and HTTP child spans (http client).
  'http.request.method': oneOf(HTTP_METHODS),
  'http.route': pattern(/^\/[A-Za-z0-9._~/-]{0,127}$/),
  'http.response.status_code': intIn(100, 599),
  // The decision.
  'portcullis.route': pattern(/^[\x21-\x7e]{1,128}$/),
  'portcullis.decision': oneOf(['allow', 'deny']),
  'portcullis.status': intIn(100, 599),
  'portcullis.reason': pattern(/^[a-z0-9_.:-]{1,64}$/),
  'portcullis.credential': oneOf(CREDENTIAL_KIND_NAMES),
  'portcullis.client_id': pattern(IDENTIFIER),
  'user.id': pattern(IDENTIFIER),
  // Child spans: where a fetch or a Redis command went and how it ended.
  'server.address': pattern(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]{1,253})$/),
  'server.port': intIn(1, 65535),
  'db.system.name': oneOf(['redis']),
  'db.operation.name': pattern(/^[A-Z][A-Z0-9_ ]{0,31}$/),
  'error.type': pattern(/^[A-Za-z0-9_.]{1,64}$/),
} satisfies Record<string, Rule>;

export type AttributeKey = keyof typeof ATTRIBUTE_RULES;
export type SpanAttributes = Partial<Record<AttributeKey, AttributeValue>>;

const RULES: Readonly<Record<string, Rule | undefined>> = ATTRIBUTE_RULES;

/** Whether `key` may be recorded with `value`. Unknown keys (including prototype names) are refused. */
export function allowedAttribute(key: string, value: unknown): value is AttributeValue {
  const rule = Object.hasOwn(RULES, key) ? RULES[key] : undefined;
  return (
    rule !== undefined &&
    (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') &&
    rule(value)
  );
}
