// Envoy CheckRequest -> AuthzRequest, Decision -> CheckResponse. Thin by design: every rule about
// what the answer means lives in core/; this file only knows Envoy's message shapes (DESIGN.md
// "What Envoy does with the answer").
import { denyBody } from '../core/decision-table.ts';
import type { AuthzRequest, Decision, HeaderSet } from '../core/types.ts';

// Decoded with LOADER_OPTIONS (keepCase, defaults: false): absent fields are undefined.
interface HeaderValueMsg {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}
export interface CheckRequestMsg {
  attributes?: {
    source?: { address?: { socket_address?: { address?: string } } };
    request?: {
      http?: {
        method?: string;
        headers?: Record<string, string>;
        header_map?: { headers?: HeaderValueMsg[] };
        path?: string;
        host?: string;
      };
    };
    context_extensions?: Record<string, string>;
  };
}

const GRPC_OK = 0;
const GRPC_CODE_FOR_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};

export function toAuthzRequest(msg: CheckRequestMsg | undefined): AuthzRequest {
  const attrs = msg?.attributes;
  const http = attrs?.request?.http;
  // Null-prototype maps: a header named "constructor" or "__proto__" is just a header.
  const headers: Record<string, string> = Object.create(null);
  const raw = http?.header_map?.headers;
  if (raw && raw.length > 0) {
    // encode_raw_headers: one entry per header line, unmerged; merge like the map form does.
    for (const h of raw) {
      if (!h.key) continue;
      const k = h.key.toLowerCase();
      const v = h.raw_value && h.raw_value.length ? h.raw_value.toString('utf8') : (h.value ?? '');
      headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
    }
  } else if (http?.headers) {
    for (const k of Object.keys(http.headers)) {
      const lk = k.toLowerCase();
      const v = String(http.headers[k]);
      headers[lk] = headers[lk] === undefined ? v : `${headers[lk]},${v}`;
    }
  }
  const ext: Record<string, string> = Object.create(null);
  if (attrs?.context_extensions) for (const k of Object.keys(attrs.context_extensions)) ext[k] = String(attrs.context_extensions[k]);
  return {
    method: http?.method || headers[':method'] || '',
    host: http?.host || headers[':authority'] || headers['host'] || '',
    rawPath: http?.path || headers[':path'] || '',
    headers,
    sourceIp: attrs?.source?.address?.socket_address?.address ?? '',
    contextExtensions: ext,
    requestId: headers['x-request-id'],
  };
}

function headerOptions(hs: readonly HeaderSet[]) {
  // append: false everywhere: released Envoys ignore append_action on request headers and drop
  // append: true for absent headers (reference §1.5).
  return hs.map((h) => ({ header: { key: h.name, value: h.value }, append: { value: false } }));
}

function metadata(d: Decision) {
  const fields: Record<string, { stringValue: string }> = {
    decision: { stringValue: d.allowed ? 'allow' : 'deny' },
    reason: { stringValue: d.reason },
  };
  if (d.route) fields.route = { stringValue: d.route };
  const id = d.identity;
  const method = id?.method ?? (d.allowed ? undefined : d.credential);
  if (method) fields.method = { stringValue: method };
  if (id?.clientId) fields.client_id = { stringValue: id.clientId };
  if (id?.subject) fields.subject = { stringValue: id.subject };
  if (id?.keyId) fields.key_id = { stringValue: id.keyId };
  // google.protobuf.Struct: camelCase value keys even with keepCase (reference §0).
  return { fields };
}

export function toCheckResponse(d: Decision) {
  if (d.allowed) {
    const ok: Record<string, unknown> = {};
    if (d.set.length) ok.headers = headerOptions(d.set);
    if (d.remove.length) ok.headers_to_remove = d.remove;
    if (d.responseHeaders.length) ok.response_headers_to_add = headerOptions(d.responseHeaders);
    if (d.removeQuery.length) ok.query_parameters_to_remove = d.removeQuery;
    return { status: { code: GRPC_OK }, ok_response: ok, dynamic_metadata: metadata(d) };
  }
  return {
    status: { code: GRPC_CODE_FOR_STATUS[d.status] ?? 7, message: d.error },
    denied_response: {
      // Always set: Envoy answers 403 for an unset status, whatever the gRPC code.
      status: { code: d.status },
      headers: headerOptions([{ name: 'content-type', value: 'application/json' }, ...d.responseHeaders]),
      body: denyBody(d),
    },
    dynamic_metadata: metadata(d),
  };
}
