// The oracle the lean codec (src/envoy/codec/) is checked against: Envoy's CheckRequest as
// proto-loader decodes it -> AuthzRequest, and Decision -> the CheckResponse object proto-loader
// serializes. The straightforward mapping, with proto-loader doing the wire work; the codec must
// give the same AuthzRequest from the same bytes and the same bytes for the same Decision
// (test/unit/lean-codec.test.ts). The message shapes are Envoy's (docs/envoy.md).
import { denyBody } from '../../src/core/decision.ts';
import type { AuthzRequest, Decision, HeaderSet } from '../../src/core/types.ts';
import { buildAuthzRequest, headersFrom, type HeaderValueMsg } from '../../src/envoy/codec/decoder.ts';
import { DENY_CONTENT_TYPE, GRPC_CODE_FOR_STATUS, GRPC_OK, metadataEntries } from '../../src/envoy/codec/encoder.ts';

// Decoded with LOADER_OPTIONS (keepCase, defaults: false): absent fields are undefined.

export interface CheckRequestMsg {
  attributes?: {
    source?: { address?: { socket_address?: { address?: string } }; principal?: string; certificate?: string };
    request?: {
      http?: {
        method?: string;
        headers?: Record<string, string>;
        header_map?: { headers?: HeaderValueMsg[] };
        path?: string;
        host?: string;
        body?: string;
        raw_body?: Buffer;
        scheme?: string;
      };
    };
    context_extensions?: Record<string, string>;
  };
}

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
    { scheme: http?.scheme, certificate: attrs?.source?.certificate, principal: attrs?.source?.principal },
    http?.body,
    http?.raw_body,
  );
}

function headerOptions(hs: readonly HeaderSet[]) {
  // append: false everywhere: released Envoys ignore append_action on request headers and drop
  // append: true for absent headers (docs/envoy.md; Envoy's HeaderValueOption:
  // https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/base.proto#config-core-v3-headervalueoption).
  return hs.map((h) => ({ header: { key: h.name, value: h.value }, append: { value: false } }));
}

function metadata(d: Decision) {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of metadataEntries(d)) fields[k] = { stringValue: v };
  // google.protobuf.Struct: camelCase value keys even with keepCase (protobufjs's well-known types;
  // docs/envoy.md, "The protos as grpc-js reads them").
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
      headers: headerOptions([DENY_CONTENT_TYPE, ...d.responseHeaders]),
      body: denyBody(d),
    },
    dynamic_metadata: metadata(d),
  };
}
