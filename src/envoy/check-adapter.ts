// Envoy CheckRequest -> AuthzRequest, Decision -> CheckResponse. Thin by design: every rule about
// what the answer means lives in core/; this file only knows Envoy's message shapes (docs/envoy.md,
// "What Envoy does with the answer").
import { denyBody } from '../core/decision.ts';
import { newHeaderMap } from '../core/header-map.ts';
import type { AuthzRequest, Decision, HeaderSet } from '../core/types.ts';

// Decoded with LOADER_OPTIONS (keepCase, defaults: false): absent fields are undefined.
export interface HeaderValueMsg {
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

export const GRPC_OK = 0;
export const GRPC_CODE_FOR_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};

export function toAuthzRequest(msg: CheckRequestMsg | undefined): AuthzRequest {
  const attrs = msg?.attributes;
  const http = attrs?.request?.http;
  return buildAuthzRequest(
    http?.method,
    http?.host,
    http?.path,
    headersFrom(http?.header_map?.headers, http?.headers),
    attrs?.source?.address?.socket_address?.address,
    attrs?.context_extensions,
  );
}

/**
 * Header lines to the normalized map. Shared by both decoders (proto-loader objects here, the lean
 * decoder in check-request-decoder.ts) so they cannot disagree.
 */
export function headersFrom(raw: readonly HeaderValueMsg[] | undefined, map: Record<string, string> | undefined): Record<string, string> {
  // A map that inherits nothing: a header named "constructor" or "__proto__" is just a header.
  const headers = newHeaderMap();
  if (raw && raw.length > 0) {
    // encode_raw_headers: one entry per header line, unmerged; merge like the map form does.
    for (const h of raw) {
      if (!h.key) continue;
      const k = h.key.toLowerCase();
      const v = h.raw_value && h.raw_value.length ? h.raw_value.toString('utf8') : (h.value ?? '');
      headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
    }
  } else if (map) {
    for (const k of Object.keys(map)) {
      const lk = k.toLowerCase();
      const v = String(map[k]);
      headers[lk] = headers[lk] === undefined ? v : `${headers[lk]},${v}`;
    }
  }
  return headers;
}

const NO_CONTEXT_EXTENSIONS: Record<string, string> = Object.freeze(Object.create(null));

export function buildAuthzRequest(
  method: string | undefined,
  host: string | undefined,
  path: string | undefined,
  headers: Record<string, string>,
  sourceIp: string | undefined,
  contextExtensions: Record<string, string> | undefined,
): AuthzRequest {
  // Most routes send none: share one frozen empty map rather than allocate one per Check.
  let ext = NO_CONTEXT_EXTENSIONS;
  if (contextExtensions) {
    for (const k of Object.keys(contextExtensions)) {
      if (ext === NO_CONTEXT_EXTENSIONS) ext = Object.create(null);
      ext[k] = String(contextExtensions[k]);
    }
  }
  return {
    method: method || headers[':method'] || '',
    host: host || headers[':authority'] || headers['host'] || '',
    rawPath: path || headers[':path'] || '',
    headers,
    sourceIp: sourceIp ?? '',
    contextExtensions: ext,
    requestId: headers['x-request-id'],
  };
}

function headerOptions(hs: readonly HeaderSet[]) {
  // append: false everywhere: released Envoys ignore append_action on request headers and drop
  // append: true for absent headers (docs/envoy.md; Envoy's HeaderValueOption:
  // https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#config-core-v3-headervalueoption).
  return hs.map((h) => ({ header: { key: h.name, value: h.value }, append: { value: false } }));
}

/**
 * Dynamic metadata for Envoy's access log, as ordered [key, value] pairs. Shared by the object
 * form below and the lean encoder (check-response-encoder.ts).
 */
export function metadataEntries(d: Decision): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['decision', d.allowed ? 'allow' : 'deny'],
    ['reason', d.reason],
  ];
  if (d.route) out.push(['route', d.route]);
  const id = d.identity;
  const method = id?.method ?? (d.allowed ? undefined : d.credential);
  if (method) out.push(['method', method]);
  if (id?.clientId) out.push(['client_id', id.clientId]);
  if (id?.subject) out.push(['subject', id.subject]);
  if (id?.keyId) out.push(['key_id', id.keyId]);
  return out;
}

function metadata(d: Decision) {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of metadataEntries(d)) fields[k] = { stringValue: v };
  // google.protobuf.Struct: camelCase value keys even with keepCase (protobufjs's well-known types;
  // docs/envoy.md, "The protos as grpc-js reads them").
  return { fields };
}

/** Headers on every deny's local reply, before the decision's own. */
export const DENY_CONTENT_TYPE: HeaderSet = { name: 'content-type', value: 'application/json' };

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
      headers: headerOptions([DENY_CONTENT_TYPE, ...d.responseHeaders]),
      body: denyBody(d),
    },
    dynamic_metadata: metadata(d),
  };
}
