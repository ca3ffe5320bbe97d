// The lean CheckRequest decoder: reads only the fields Portcullis uses straight off the wire
// (protobufjs Reader) and skips the rest (destination, time, TLS, metadata, ...), instead of
// decoding every field into messages and converting them to objects (proto-loader).
// Same results as the oracle's toAuthzRequest (test/support/check-oracle.ts): both end in
// headersFrom/buildAuthzRequest, and protobuf's rules are kept as protobufjs applies them (last
// occurrence of a field wins, a repeated sub-message replaces the earlier one, absent map key/value
// are ""). A field arriving with an unexpected wire type is skipped. Checked by
// test/unit/lean-codec.test.ts.
import protobuf from 'protobufjs';
import { newHeaderMap } from '../../core/header-map.ts';
import type { AuthzRequest } from '../../core/types.ts';
import { Memo } from '../../plumbing/memo.ts';
import { tagOf } from './tags.ts';

/** A header line of `header_map` (Envoy's encode_raw_headers), as the oracle and this decoder read it. */
export interface HeaderValueMsg {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}

/**
 * Header lines to the normalized map. Also used by the proto-loader oracle the tests check this
 * decoder against (test/support/check-oracle.ts), so the two cannot disagree on it.
 */
export function headersFrom(
  raw: readonly HeaderValueMsg[] | undefined,
  map: Record<string, string> | undefined,
): Record<string, string> {
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

const NO_CONTEXT_EXTENSIONS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

/** What Envoy says about the connection besides the address: scheme and the client certificate. */
export interface RequestPeer {
  /** http.scheme. */
  scheme?: string;
  /** source.certificate (URL-encoded PEM). */
  certificate?: string;
  /** source.principal. */
  principal?: string;
}

export function buildAuthzRequest(
  method: string | undefined,
  host: string | undefined,
  path: string | undefined,
  headers: Record<string, string>,
  sourceIp: string | undefined,
  contextExtensions: Record<string, string> | undefined,
  peer?: RequestPeer,
  body?: string,
  rawBody?: Uint8Array,
): AuthzRequest {
  // Most routes send none: share one frozen empty map rather than allocate one per Check.
  let ext = NO_CONTEXT_EXTENSIONS;
  if (contextExtensions) {
    for (const k of Object.keys(contextExtensions)) {
      if (ext === NO_CONTEXT_EXTENSIONS) ext = Object.create(null) as Record<string, string>;
      ext[k] = String(contextExtensions[k]);
    }
  }
  const req: AuthzRequest = {
    method: method || headers[':method'] || '',
    host: host || headers[':authority'] || headers['host'] || '',
    rawPath: path || headers[':path'] || '',
    headers,
    sourceIp: sourceIp ?? '',
    contextExtensions: ext,
    requestId: headers['x-request-id'],
    // Always the same keys (one object shape); empty strings are "not sent" (proto3 defaults).
    scheme: peer?.scheme || headers[':scheme'] || '',
    peerCertificate: peer?.certificate || undefined,
    peerPrincipal: peer?.principal || undefined,
  };
  // Only with Envoy's with_request_body; an empty body is no body.
  if (body) req.body = body;
  if (rawBody?.length) req.rawBody = rawBody;
  return req;
}

const AC = 'envoy.service.auth.v3.AttributeContext';
const T = {
  attributes: tagOf('envoy.service.auth.v3.CheckRequest', 'attributes', 'bytes'),
  source: tagOf(AC, 'source', 'bytes'),
  request: tagOf(AC, 'request', 'bytes'),
  contextExtensions: tagOf(AC, 'context_extensions', 'bytes'),
  peerAddress: tagOf(`${AC}.Peer`, 'address', 'bytes'),
  peerPrincipal: tagOf(`${AC}.Peer`, 'principal', 'bytes'),
  peerCertificate: tagOf(`${AC}.Peer`, 'certificate', 'bytes'),
  socketAddress: tagOf('envoy.config.core.v3.Address', 'socket_address', 'bytes'),
  socketAddressAddress: tagOf('envoy.config.core.v3.SocketAddress', 'address', 'bytes'),
  http: tagOf(`${AC}.Request`, 'http', 'bytes'),
  method: tagOf(`${AC}.HttpRequest`, 'method', 'bytes'),
  headers: tagOf(`${AC}.HttpRequest`, 'headers', 'bytes'),
  path: tagOf(`${AC}.HttpRequest`, 'path', 'bytes'),
  host: tagOf(`${AC}.HttpRequest`, 'host', 'bytes'),
  scheme: tagOf(`${AC}.HttpRequest`, 'scheme', 'bytes'),
  headerMap: tagOf(`${AC}.HttpRequest`, 'header_map', 'bytes'),
  body: tagOf(`${AC}.HttpRequest`, 'body', 'bytes'),
  rawBody: tagOf(`${AC}.HttpRequest`, 'raw_body', 'bytes'),
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
  /** A HeaderMap (inherits nothing), read straight off the wire (see readHeaderEntry). */
  headers?: Record<string, string>;
  /** A header name in `headers` has an upper-case letter (Envoy sends none). */
  mixedCase?: boolean;
  headerList?: HeaderValueMsg[];
  scheme?: string;
  body?: string;
  rawBody?: Uint8Array;
}
interface Source {
  ip?: string;
  principal?: string;
  certificate?: string;
}
interface Attributes {
  source?: Source;
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
  // Envoy's lower-case headers map is already the normalized map; headersFrom lowercases and merges
  // the rest (raw header_map lines, names in mixed case) exactly as on the proto-loader path.
  const headers =
    http?.headers && !http.mixedCase && !http.headerList?.length
      ? http.headers
      : headersFrom(http?.headerList, http?.headers);
  const src = attrs?.source;
  return buildAuthzRequest(
    http?.method,
    http?.host,
    http?.path,
    headers,
    src?.ip,
    attrs?.ctx,
    {
      scheme: http?.scheme,
      certificate: src?.certificate,
      principal: src?.principal,
    },
    http?.body,
    http?.rawBody,
  );
}

function readAttributes(r: protobuf.Reader, end: number): Attributes {
  const a: Attributes = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.source) a.source = readPeer(r, r.uint32() + r.pos);
    else if (tag === T.request) a.http = readRequest(r, r.uint32() + r.pos);
    else if (tag === T.contextExtensions) readMapEntry(r, r.uint32() + r.pos, (a.ctx ??= {}));
    else r.skipType(tag & 7);
  }
  return a;
}

/**
 * Peer -> Address -> SocketAddress.address, principal and certificate; a later occurrence of any
 * level replaces the earlier.
 */
function readPeer(r: protobuf.Reader, end: number): Source {
  const s: Source = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.peerAddress) s.ip = readAddress(r, r.uint32() + r.pos);
    else if (tag === T.peerPrincipal) s.principal = r.string();
    else if (tag === T.peerCertificate) s.certificate = r.string();
    else r.skipType(tag & 7);
  }
  return s;
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
    if (tag === T.headers) readHeaderEntry(r, r.uint32() + r.pos, h);
    else if (tag === T.method) h.method = r.string();
    else if (tag === T.path) h.path = r.string();
    else if (tag === T.host) h.host = r.string();
    else if (tag === T.scheme) h.scheme = r.string();
    else if (tag === T.headerMap) h.headerList = readHeaderMap(r, r.uint32() + r.pos);
    else if (tag === T.body) h.body = r.string();
    else if (tag === T.rawBody) h.rawBody = r.bytes();
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
    if (tag === T.hvKey) hv.key = readName(r);
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
    if (tag === T.mapKey) key = readName(r);
    else if (tag === T.mapValue) value = r.string();
    else r.skipType(tag & 7);
  }
  into[key] = value;
}

/**
 * One entry of the headers map into a HeaderMap (inherits nothing), with the same outcome as a plain
 * object (readMapEntry): the last value of a repeated name wins, and a "__proto__" entry is lost,
 * as assigning it to a plain object does.
 */
function readHeaderEntry(r: protobuf.Reader, end: number, h: Http): void {
  let key = '';
  let value = '';
  let upper = false;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === T.mapKey) {
      key = readName(r);
      upper = nameHasUpper;
    } else if (tag === T.mapValue) value = r.string();
    else r.skipType(tag & 7);
  }
  if (key === '__proto__') return;
  (h.headers ??= newHeaderMap())[key] = value;
  if (upper) h.mixedCase = true;
}

// Header names (and context-extension keys) repeat from Check to Check: an ASCII name is looked up
// by its bytes and the string decoded the first time is reused, instead of decoding and allocating
// it again. Values are always decoded. Keyed by a hash of the bytes, and a hit is compared byte for
// byte (sameAscii), so a colliding name is decoded, never mistaken.
const NAME_MAX_BYTES = 64;
const names = new Memo<number, string>(1024);
/** Whether the name readName returned last has an upper-case letter. */
let nameHasUpper = false;

/** Same result as `r.string()` (protobufjs: the bytes up to the length or the end, as UTF-8). */
function readName(r: protobuf.Reader): string {
  const len = r.uint32();
  const start = r.pos;
  const end = Math.min(start + len, r.len);
  const buf = r.buf;
  if (end - start <= NAME_MAX_BYTES) {
    // FNV-1a over the bytes; any byte >= 0x80 (UTF-8, where bytes and UTF-16 units differ) skips the cache.
    let h = 0x811c9dc5;
    let ascii = true;
    let upper = false;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b >= 0x80) {
        ascii = false;
        break;
      }
      if (b >= 65 && b <= 90) upper = true;
      h = Math.imul(h ^ b, 0x01000193);
    }
    if (ascii) {
      nameHasUpper = upper;
      const cached = names.get(h);
      r.pos = end;
      if (cached !== undefined && sameAscii(cached, buf, start, end)) return cached;
      return names.set(h, utf8(buf, start, end));
    }
  }
  r.pos = end;
  const s = utf8(buf, start, end);
  nameHasUpper = s !== s.toLowerCase();
  return s;
}

function sameAscii(s: string, buf: Uint8Array, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

function utf8(buf: Uint8Array, start: number, end: number): string {
  // grpc-js hands the decoder a Buffer; a plain Uint8Array (tests) gets a view, no copy.
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.toString('utf8', start, end);
}
