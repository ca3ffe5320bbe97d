// Reading the original request out of a forward-auth call, the way each proxy sends it
// (docs/forward-auth.md). Pure: the handler has already checked the caller is a trusted proxy.
//
//   Envoy http_service   <method> <prefix><original path?query>   Host: original host
//   nginx auth_request   <any>    <prefix>   X-Original-Method, X-Original-URI (Host: original host)
//   Traefik ForwardAuth  GET      <prefix>   X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host
import { isIP } from 'node:net';
import { newHeaderMap } from '../core/header-map.ts';
import type { InvalidRequestReason } from '../core/reasons.ts';
import type { AuthzRequest } from '../core/types.ts';
import { unmapIPv4 } from './trusted-proxies.ts';

export type ProxyStyle = 'envoy' | 'nginx' | 'traefik';

/** Set by the nginx config we ship: answer denies in the shape auth_request can carry. */
export const NGINX_MODE_HEADER = 'x-portcullis-proxy';

/**
 * Headers that describe the original request rather than belong to it. They are read here and
 * never handed to the decision: a client cannot turn them into identity or credentials.
 */
const FORWARDING_HEADERS = new Set([
  'x-original-uri',
  'x-original-method',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-forwarded-host',
  'x-forwarded-proto',
  NGINX_MODE_HEADER,
]);

export type ParsedForwardAuth =
  | { ok: true; style: ProxyStyle; request: AuthzRequest; nginxMode: boolean }
  | { ok: false; reason: InvalidRequestReason; nginxMode: boolean };

export interface ForwardAuthCall {
  method: string;
  /** The request-target as received (`req.url`), not normalized. */
  url: string;
  /** `req.rawHeaders`: name, value, name, value… with repeats kept. */
  rawHeaders: readonly string[];
  /** TCP peer: the proxy. */
  peerIp: string;
}

export function parseForwardAuthCall(call: ForwardAuthCall, prefix: string): ParsedForwardAuth {
  // Maps that inherit nothing: a header named "constructor" or "__proto__" is just a header.
  const headers = newHeaderMap();
  const forwarding = Object.create(null) as Record<string, string>;
  let repeatedForwarding = false;
  let host = '';
  let hostLines = 0;
  const raw = call.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'host') {
      host = value;
      hostLines++;
    } else if (FORWARDING_HEADERS.has(name)) {
      if (forwarding[name] !== undefined) repeatedForwarding = true;
      forwarding[name] = value;
    } else {
      // Joined with "," (no space), as Envoy joins repeated headers in a CheckRequest: the decision
      // rejects a repeated Authorization or API-key header the same way on both paths. (Node's own
      // req.headers would silently keep only the first Authorization line.)
      headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
    }
  }
  // Even a malformed nginx call is answered in the shape nginx can pass on.
  const nginxMode = forwarding[NGINX_MODE_HEADER]?.toLowerCase() === 'nginx';
  const fail = (reason: InvalidRequestReason): ParsedForwardAuth => ({ ok: false, reason, nginxMode });
  if (repeatedForwarding) return fail('forward_auth_header_repeated');
  if (hostLines > 1) return fail('forward_auth_host_repeated');

  const target = call.url;
  const q = target.indexOf('?');
  const targetPath = q === -1 ? target : target.slice(0, q);
  const nginxUri = forwarding['x-original-uri'];
  const traefikUri = forwarding['x-forwarded-uri'];

  let style: ProxyStyle;
  let method: string;
  let rawPath: string;
  let authority: string;
  if (targetPath === prefix) {
    if (nginxUri !== undefined && traefikUri !== undefined) return fail('forward_auth_style_ambiguous');
    if (nginxUri !== undefined) {
      style = 'nginx';
      method = forwarding['x-original-method'] ?? '';
      rawPath = nginxUri;
      authority = host;
    } else if (traefikUri !== undefined) {
      style = 'traefik';
      method = forwarding['x-forwarded-method'] ?? '';
      rawPath = traefikUri;
      authority = forwarding['x-forwarded-host'] ?? '';
    } else {
      return fail('forward_auth_original_request_missing');
    }
    if (!method) return fail('forward_auth_method_missing');
  } else if (target.startsWith(prefix + '/')) {
    // Envoy's http_service with path_prefix: the original :path (with its query) follows the prefix.
    // A call that also names an original URI is a proxy configured for another style (e.g. Traefik
    // pointed at "<prefix>/"): deciding on the wrong path would be worse than refusing.
    if (nginxUri !== undefined || traefikUri !== undefined) return fail('forward_auth_style_ambiguous');
    style = 'envoy';
    method = call.method;
    rawPath = target.slice(prefix.length);
    authority = host;
  } else {
    // e.g. "/x/../authz/y": routed here after URL normalization, but not what a proxy sends.
    return fail('forward_auth_target_invalid');
  }
  if (rawPath[0] !== '/') return fail('forward_auth_uri_invalid');
  // Every proxy always states the host; without it a host-bound route could fall through to a
  // broader one.
  if (!authority) return fail('forward_auth_host_missing');

  headers[':authority'] = authority;
  headers[':method'] = method;
  headers[':path'] = rawPath;
  return {
    ok: true,
    style,
    nginxMode,
    request: {
      method,
      host: authority,
      rawPath,
      headers,
      sourceIp: clientAddress(style, headers, call.peerIp),
      contextExtensions: Object.create(null) as Record<string, string>,
      requestId: headers['x-request-id'],
      // The scheme the client used, as the trusted proxy states it (the DPoP htu is rebuilt from it;
      // credentials.dpop.external_origin overrides it). A client certificate can only come through
      // a configured header here (XFCC, Client-Cert): the proxy's TLS peer is not the client.
      scheme: forwarding['x-forwarded-proto']?.trim().toLowerCase() ?? '',
      peerCertificate: undefined,
      peerPrincipal: undefined,
    },
  };
}

/**
 * The client address as the proxy saw it: what Envoy's gRPC CheckRequest carries as
 * `source.address` (API-key source CIDRs, rate limits by source_ip). nginx and Envoy state it in
 * X-Real-IP (the shipped configs set it from $remote_addr / %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%,
 * overwriting any client copy). Traefik always rewrites X-Forwarded-For and appends the address it
 * saw last. (Envoy's own HTTP client appends Envoy's address to X-Forwarded-For, so it cannot be
 * read that way.) Without a usable value: the peer itself.
 */
function clientAddress(style: ProxyStyle, headers: Record<string, string>, peerIp: string): string {
  let candidate: string | undefined;
  if (style === 'traefik') {
    const xff = headers['x-forwarded-for'];
    if (xff) candidate = xff.slice(xff.lastIndexOf(',') + 1).trim();
  } else {
    candidate = headers['x-real-ip']?.trim();
  }
  return unmapIPv4(candidate && isIP(candidate) ? candidate : peerIp);
}
