// The lean CheckRequest decoder: reads only the fields Portcullis uses straight off the wire
// (protobufjs Reader) and skips the rest (destination, time, body, TLS, metadata, ...), instead of
// decoding every field into messages and converting them to objects (proto-loader).
// Same results as toAuthzRequest(proto-loader object): both end in headersFrom/buildAuthzRequest,
// and protobuf's rules are kept as protobufjs applies them (last occurrence of a field wins, a
// repeated sub-message replaces the earlier one, absent map key/value are ""). A field arriving with
// an unexpected wire type is skipped. Checked by test/unit/lean-codec.test.ts.
import protobuf from 'protobufjs';
import type { AuthzRequest } from '../core/types.ts';
import { buildAuthzRequest, headersFrom, type HeaderValueMsg } from './check-adapter.ts';
import { tagOf } from './proto-root.ts';

const AC = 'envoy.service.auth.v3.AttributeContext';
const T = {
  attributes: tagOf('envoy.service.auth.v3.CheckRequest', 'attributes', 'bytes'),
  source: tagOf(AC, 'source', 'bytes'),
  request: tagOf(AC, 'request', 'bytes'),
  contextExtensions: tagOf(AC, 'context_extensions', 'bytes'),
  peerAddress: tagOf(`${AC}.Peer`, 'address', 'bytes'),
  socketAddress: tagOf('envoy.config.core.v3.Address', 'socket_address', 'bytes'),
  socketAddressAddress: tagOf('envoy.config.core.v3.SocketAddress', 'address', 'bytes'),
  http: tagOf(`${AC}.Request`, 'http', 'bytes'),
  method: tagOf(`${AC}.HttpRequest`, 'method', 'bytes'),
  headers: tagOf(`${AC}.HttpRequest`, 'headers', 'bytes'),
  path: tagOf(`${AC}.HttpRequest`, 'path', 'bytes'),
  host: tagOf(`${AC}.HttpRequest`, 'host', 'bytes'),
  headerMap: tagOf(`${AC}.HttpRequest`, 'header_map', 'bytes'),
  headerMapHeaders: tagOf('envoy.config.core.v3.HeaderMap', 'headers', 'bytes'),
  hvKey: tagOf('envoy.config.core.v3.HeaderValue', 'key', 'bytes'),
  hvValue: tagOf('envoy.config.core.v3.HeaderValue', 'value', 'bytes'),
  hvRawValue: tagOf('envoy.config.core.v3.HeaderValue', 'raw_value', 'bytes'),
  // map<string, string> entries are messages with key = 1, value = 2 (protobuf spec, not Envoy's).
  mapKey: (1 << 3) | 2,
  mapValue: (2 << 3) | 2,
};

interface Http {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  headerList?: HeaderValueMsg[];
}
interface Attributes {
  sourceIp?: string;
  http?: Http;
  ctx?: Record<string, string>;
}

export function decodeCheckRequest(buf: Uint8Array): AuthzRequest {
  const r = protobuf.Reader.create(buf);
  let attrs: Attributes | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === T.attributes) attrs = readAttributes(r, r.uint32() + r.pos);
    else r.skipType(tag & 7);
  }
  const http = attrs?.http;
  return buildAuthzRequest(http?.method, http?.host, http?.path, headersFrom(http?.headerList, http?.headers), attrs?.sourceIp, attrs?.ctx);
}

function readAttributes(r: protobuf.Reader, end: number): Attributes {
  const a: Attributes = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.source) a.sourceIp = readPeerAddress(r, r.uint32() + r.pos);
    else if (tag === T.request) a.http = readRequest(r, r.uint32() + r.pos);
    else if (tag === T.contextExtensions) readMapEntry(r, r.uint32() + r.pos, (a.ctx ??= {}));
    else r.skipType(tag & 7);
  }
  return a;
}

/** Peer -> Address -> SocketAddress.address; a later occurrence of any level replaces the earlier. */
function readPeerAddress(r: protobuf.Reader, end: number): string | undefined {
  let ip: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.peerAddress) ip = readAddress(r, r.uint32() + r.pos);
    else r.skipType(tag & 7);
  }
  return ip;
}

// Address.address is a oneof {socket_address, pipe, envoy_internal_address}. protobufjs's decode
// keeps every member that arrived (another member does not clear socket_address), so here too.
function readAddress(r: protobuf.Reader, end: number): string | undefined {
  let ip: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.socketAddress) ip = readSocketAddress(r, r.uint32() + r.pos);
    else r.skipType(tag & 7);
  }
  return ip;
}

function readSocketAddress(r: protobuf.Reader, end: number): string {
  let address: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.socketAddressAddress) address = r.string();
    else r.skipType(tag & 7);
  }
  // An empty socket_address still reads as "" (proto-loader: undefined -> ?? '').
  return address ?? '';
}

function readRequest(r: protobuf.Reader, end: number): Http | undefined {
  let http: Http | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.http) http = readHttp(r, r.uint32() + r.pos);
    else r.skipType(tag & 7);
  }
  return http;
}

function readHttp(r: protobuf.Reader, end: number): Http {
  const h: Http = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.headers) readMapEntry(r, r.uint32() + r.pos, (h.headers ??= {}));
    else if (tag === T.method) h.method = r.string();
    else if (tag === T.path) h.path = r.string();
    else if (tag === T.host) h.host = r.string();
    else if (tag === T.headerMap) h.headerList = readHeaderMap(r, r.uint32() + r.pos);
    else r.skipType(tag & 7);
  }
  return h;
}

function readHeaderMap(r: protobuf.Reader, end: number): HeaderValueMsg[] {
  const list: HeaderValueMsg[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.headerMapHeaders) list.push(readHeaderValue(r, r.uint32() + r.pos));
    else r.skipType(tag & 7);
  }
  return list;
}

function readHeaderValue(r: protobuf.Reader, end: number): HeaderValueMsg {
  const hv: HeaderValueMsg = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.hvKey) hv.key = r.string();
    else if (tag === T.hvValue) hv.value = r.string();
    else if (tag === T.hvRawValue) hv.raw_value = r.bytes() as Buffer;
    else r.skipType(tag & 7);
  }
  return hv;
}

/**
 * One map<string, string> entry into `into`, as protobufjs does it: a plain object (so a
 * "__proto__" key is lost exactly as it is on the proto-loader path), missing key or value is "".
 */
function readMapEntry(r: protobuf.Reader, end: number, into: Record<string, string>): void {
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.mapKey) key = r.string();
    else if (tag === T.mapValue) value = r.string();
    else r.skipType(tag & 7);
  }
  into[key] = value;
}
