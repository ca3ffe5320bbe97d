// The lean CheckResponse encoder: writes the wire bytes for a Decision directly (protobufjs
// Writer), with the constant sub-messages encoded once at startup, instead of building the object
// form, converting it (fromObject) and encoding that (proto-loader). Byte-for-byte the same as
// proto-loader's serialization of toCheckResponse(d): same fields, same order, same values.
// Checked by test/unit/lean-codec.test.ts.
import protobuf from 'protobufjs';
import { denyBody } from '../core/decision-table.ts';
import type { Decision, HeaderSet } from '../core/types.ts';
import { DENY_CONTENT_TYPE, GRPC_CODE_FOR_STATUS, GRPC_OK, metadataEntries } from './check-adapter.ts';
import { tagOf } from './proto-root.ts';

const CR = 'envoy.service.auth.v3.CheckResponse';
const T = {
  status: tagOf(CR, 'status', 'bytes'),
  denied: tagOf(CR, 'denied_response', 'bytes'),
  ok: tagOf(CR, 'ok_response', 'bytes'),
  metadata: tagOf(CR, 'dynamic_metadata', 'bytes'),
  statusCode: tagOf('google.rpc.Status', 'code', 'varint'),
  statusMessage: tagOf('google.rpc.Status', 'message', 'bytes'),
  okHeaders: tagOf('envoy.service.auth.v3.OkHttpResponse', 'headers', 'bytes'),
  okRemove: tagOf('envoy.service.auth.v3.OkHttpResponse', 'headers_to_remove', 'bytes'),
  okResponseHeaders: tagOf('envoy.service.auth.v3.OkHttpResponse', 'response_headers_to_add', 'bytes'),
  okRemoveQuery: tagOf('envoy.service.auth.v3.OkHttpResponse', 'query_parameters_to_remove', 'bytes'),
  deniedStatus: tagOf('envoy.service.auth.v3.DeniedHttpResponse', 'status', 'bytes'),
  deniedHeaders: tagOf('envoy.service.auth.v3.DeniedHttpResponse', 'headers', 'bytes'),
  deniedBody: tagOf('envoy.service.auth.v3.DeniedHttpResponse', 'body', 'bytes'),
  httpStatusCode: tagOf('envoy.type.v3.HttpStatus', 'code', 'varint'),
  hvoHeader: tagOf('envoy.config.core.v3.HeaderValueOption', 'header', 'bytes'),
  hvoAppend: tagOf('envoy.config.core.v3.HeaderValueOption', 'append', 'bytes'),
  hvKey: tagOf('envoy.config.core.v3.HeaderValue', 'key', 'bytes'),
  hvValue: tagOf('envoy.config.core.v3.HeaderValue', 'value', 'bytes'),
  boolValue: tagOf('google.protobuf.BoolValue', 'value', 'varint'),
  structFields: tagOf('google.protobuf.Struct', 'fields', 'bytes'),
  stringValue: tagOf('google.protobuf.Value', 'stringValue', 'bytes'),
  // map<string, Value> entries are messages with key = 1, value = 2 (protobuf spec).
  mapKey: (1 << 3) | 2,
  mapValue: (2 << 3) | 2,
};

const encoded = (write: (w: protobuf.Writer) => void): Uint8Array => {
  const w = protobuf.Writer.create();
  write(w);
  return w.finish();
};

// Constant sub-messages, encoded once.
const OK_STATUS = encoded((w) => w.uint32(T.statusCode).int32(GRPC_OK));
const APPEND_FALSE = encoded((w) => w.uint32(T.boolValue).bool(false));

function headerOption(w: protobuf.Writer, tag: number, h: HeaderSet): void {
  w.uint32(tag).fork();
  w.uint32(T.hvoHeader).fork().uint32(T.hvKey).string(h.name).uint32(T.hvValue).string(h.value).ldelim();
  w.uint32(T.hvoAppend).bytes(APPEND_FALSE);
  w.ldelim();
}

function metadata(w: protobuf.Writer, d: Decision): void {
  w.uint32(T.metadata).fork();
  for (const [k, v] of metadataEntries(d)) {
    w.uint32(T.structFields).fork().uint32(T.mapKey).string(k).uint32(T.mapValue).fork().uint32(T.stringValue).string(v).ldelim().ldelim();
  }
  w.ldelim();
}

export function encodeCheckResponse(d: Decision): Uint8Array {
  const w = protobuf.Writer.create();
  if (d.allowed) {
    w.uint32(T.status).bytes(OK_STATUS);
    w.uint32(T.ok).fork();
    for (const h of d.set) headerOption(w, T.okHeaders, h);
    for (const name of d.remove) w.uint32(T.okRemove).string(name);
    for (const h of d.responseHeaders) headerOption(w, T.okResponseHeaders, h);
    for (const q of d.removeQuery) w.uint32(T.okRemoveQuery).string(q);
    w.ldelim();
  } else {
    w.uint32(T.status).fork().uint32(T.statusCode).int32(GRPC_CODE_FOR_STATUS[d.status] ?? 7).uint32(T.statusMessage).string(d.error).ldelim();
    w.uint32(T.denied).fork();
    // Always set: Envoy answers 403 for an unset status, whatever the gRPC code.
    w.uint32(T.deniedStatus).fork().uint32(T.httpStatusCode).int32(d.status).ldelim();
    headerOption(w, T.deniedHeaders, DENY_CONTENT_TYPE);
    for (const h of d.responseHeaders) headerOption(w, T.deniedHeaders, h);
    w.uint32(T.deniedBody).string(denyBody(d));
    w.ldelim();
  }
  metadata(w, d);
  return w.finish();
}
