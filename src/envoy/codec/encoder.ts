// The lean CheckResponse encoder: writes the wire bytes for a Decision directly, in one pass from
// the end (writer.ts), with the constant fields pre-encoded, instead of building the object
// form, converting it (fromObject) and encoding that (proto-loader). Byte-for-byte the same as
// proto-loader's serialization of the oracle's toCheckResponse(d) (test/support/check-oracle.ts):
// same fields, same order, same values. Checked by test/unit/lean-codec.test.ts.
import { denyBody } from '../../core/decision.ts';
import type { Allow, Decision, HeaderSet, Identity } from '../../core/types.ts';
import { Memo } from '../../plumbing/memo.ts';
import { tagOf } from './tags.ts';
import { ReverseWriter, stringBound } from './writer.ts';

export const GRPC_OK = 0;
export const GRPC_CODE_FOR_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};

/** Headers on every deny's local reply, before the decision's own. */
export const DENY_CONTENT_TYPE: HeaderSet = { name: 'content-type', value: 'application/json' };

/**
 * Dynamic metadata for Envoy's access log, as ordered [key, value] pairs. Also used by the
 * proto-loader oracle (test/support/check-oracle.ts).
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
  if (id?.bound) out.push(['bound', id.bound]);
  if (d.mcp?.tool !== undefined) out.push(['mcp_tool', d.mcp.tool]);
  return out;
}

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

for (const [name, tag] of Object.entries(T)) {
  // Every tag here fits one byte (field numbers < 16); ReverseWriter.byte relies on it.
  if (tag >= 0x80)
    throw new Error(`CheckResponse codec: tag of ${name} needs more than one byte; update src/envoy/codec/encoder.ts`);
}

// Constant fields, encoded once: `status: {code: 0}` and `append: {value: false}`, tag and length
// included, as protobufjs writes them (it writes explicitly set zero values).
const OK_STATUS_FIELD = Uint8Array.of(T.status, 2, T.statusCode, GRPC_OK);
const APPEND_FALSE_FIELD = Uint8Array.of(T.hvoAppend, 2, T.boolValue, 0);

const w = new ReverseWriter();

/** HeaderValueOption {header {key, value}, append {value: false}}, written last-first. */
function headerOption(tag: number, h: HeaderSet): void {
  const option = w.mark();
  w.raw(APPEND_FALSE_FIELD);
  const header = w.mark();
  w.string(T.hvValue, h.value).string(T.hvKey, h.name).close(T.hvoHeader, header);
  w.close(tag, option);
}

function headerOptions(tag: number, hs: readonly HeaderSet[]): void {
  for (let i = hs.length - 1; i >= 0; i--) headerOption(tag, hs[i]);
}

function boundOf(hs: readonly HeaderSet[]): number {
  let n = 0;
  for (const h of hs) n += stringBound(h.name) + stringBound(h.value) + 24;
  return n;
}

// A client repeating its request gets the same allow, and the same bytes: the last allow's bytes
// are kept per identity and served again when the new allow would encode to the same bytes. What
// an allow's bytes are made of, and how reusesBytes compares each:
//   identity      the memo key, by reference. Identities are frozen (newIdentity), so the fields
//                 the metadata carries (method, client_id, subject, key_id) cannot change under it.
//   route, reason compared as values.
//   set           by reference. HeaderPolicy.identityHeaders gives one frozen list per identity and
//                 route of one config generation: another route, a reload or a phantom token means
//                 another list, and a miss (even with equal contents: a miss is always safe).
//   remove, removeQuery  by content: made per Check from the request's headers and query.
//   responseHeaders      an allow with any (rate-limit quota, new every Check) is never kept.
// test/unit/lean-codec.test.ts changes each of these in turn and compares with the oracle.
// The kept bytes are a copy in memory of their own (a pooled slice would pin its whole pool slab);
// grpc-js copies the returned bytes into its frame and never writes to them.
interface KeptAllow {
  route: string;
  reason: string;
  set: readonly HeaderSet[];
  remove: readonly string[];
  removeQuery: readonly string[];
  bytes: Buffer;
}
const keptAllows = new Memo<Identity, KeptAllow>(4096);

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function reusesBytes(kept: KeptAllow, d: Allow): boolean {
  return (
    kept.set === d.set &&
    kept.route === d.route &&
    kept.reason === d.reason &&
    sameStrings(kept.remove, d.remove) &&
    sameStrings(kept.removeQuery, d.removeQuery)
  );
}

export function encodeCheckResponse(d: Decision): Buffer {
  // An MCP message's tool is in the metadata and differs from call to call: never kept.
  if (!d.allowed || !d.identity || d.responseHeaders.length !== 0 || d.mcp) return encode(d);
  const kept = keptAllows.get(d.identity);
  if (kept && reusesBytes(kept, d)) return kept.bytes;
  const bytes = encode(d);
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  keptAllows.set(d.identity, {
    route: d.route,
    reason: d.reason,
    set: d.set,
    remove: d.remove,
    removeQuery: d.removeQuery,
    bytes: copy,
  });
  return bytes;
}

function encode(d: Decision): Buffer {
  const meta = metadataEntries(d);
  const body = d.allowed ? '' : denyBody(d);
  let bound = 256 + stringBound(body) + boundOf(d.responseHeaders);
  for (const [k, v] of meta) bound += stringBound(k) + stringBound(v) + 16;
  if (d.allowed) {
    bound += boundOf(d.set);
    for (const r of d.remove) bound += stringBound(r);
    for (const q of d.removeQuery) bound += stringBound(q);
  } else bound += stringBound(d.error);
  w.reset(bound);

  // Fields last-first: dynamic_metadata (4), ok_response (3) or denied_response (2), status (1).
  const struct = w.mark();
  for (let i = meta.length - 1; i >= 0; i--) {
    const entry = w.mark();
    const value = w.mark();
    w.string(T.stringValue, meta[i][1]).close(T.mapValue, value);
    w.string(T.mapKey, meta[i][0]).close(T.structFields, entry);
  }
  w.close(T.metadata, struct);

  if (d.allowed) {
    const ok = w.mark();
    for (let i = d.removeQuery.length - 1; i >= 0; i--) w.string(T.okRemoveQuery, d.removeQuery[i]);
    headerOptions(T.okResponseHeaders, d.responseHeaders);
    for (let i = d.remove.length - 1; i >= 0; i--) w.string(T.okRemove, d.remove[i]);
    headerOptions(T.okHeaders, d.set);
    w.close(T.ok, ok);
    w.raw(OK_STATUS_FIELD);
  } else {
    const denied = w.mark();
    w.string(T.deniedBody, body);
    headerOptions(T.deniedHeaders, d.responseHeaders);
    // Always set: Envoy answers 403 for an unset status, whatever the gRPC code.
    headerOption(T.deniedHeaders, DENY_CONTENT_TYPE);
    const httpStatus = w.mark();
    w.varint(d.status).byte(T.httpStatusCode).close(T.deniedStatus, httpStatus);
    w.close(T.denied, denied);
    const status = w.mark();
    w.string(T.statusMessage, d.error)
      .varint(GRPC_CODE_FOR_STATUS[d.status] ?? 7)
      .byte(T.statusCode)
      .close(T.status, status);
  }
  return w.finish();
}
