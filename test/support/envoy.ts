// What Envoy sends and what it does with the answer (docs/envoy.md, with Envoy's docs and source),
// encoded once so every contract test uses the same facts.

export interface EnvoyRequestInit {
  method?: string;
  path?: string;
  host?: string;
  scheme?: string;
  /** Header lines as the client sent them: names in any case, repeats allowed. */
  headers?: Array<[string, string]> | Record<string, string>;
  sourceIp?: string;
  contextExtensions?: Record<string, string>;
  /** encode_raw_headers: true -> header_map with raw bytes instead of the headers map. */
  rawHeaders?: boolean;
  /** include_peer_certificate: the client certificate, PEM (sent URL-encoded, as Envoy does). */
  peerCertificatePem?: string;
  /** source.principal (the certificate's URI SAN or subject). */
  principal?: string;
}

/** A CheckRequest the way Envoy's HTTP filter builds it (docs/envoy.md, "What Envoy sends"). */
export function envoyCheckRequest(init: EnvoyRequestInit = {}) {
  const method = init.method ?? 'GET';
  const path = init.path ?? '/';
  const host = init.host ?? 'api.example.com';
  const lines: Array<[string, string]> = [
    [':authority', host],
    [':method', method],
    [':path', path],
    [':scheme', init.scheme ?? 'https'],
    ['x-request-id', 'req-' + Math.random().toString(36).slice(2)],
    ...(Array.isArray(init.headers) ? init.headers : Object.entries(init.headers ?? {})),
  ];
  const http: Record<string, unknown> = {
    id: '5561742167649911107', // Envoy's stream id, not the request id
    method,
    path, // includes the query string
    host,
    scheme: init.scheme ?? 'https',
    protocol: 'HTTP/1.1',
  };
  if (init.rawHeaders) {
    http.header_map = { headers: lines.map(([k, v]) => ({ key: k.toLowerCase(), raw_value: Buffer.from(v) })) };
  } else {
    // Keys lowercased, duplicates joined with "," (no space).
    const map: Record<string, string> = {};
    for (const [k, v] of lines) {
      const lk = k.toLowerCase();
      map[lk] = map[lk] === undefined ? v : `${map[lk]},${v}`;
    }
    http.headers = map;
  }
  return {
    attributes: {
      source: {
        address: { socket_address: { address: init.sourceIp ?? '10.1.2.3', port_value: 54321 } },
        ...(init.principal !== undefined ? { principal: init.principal } : {}),
        // Envoy URL-encodes the PEM (ext_authz's include_peer_certificate).
        ...(init.peerCertificatePem !== undefined ? { certificate: encodeURIComponent(init.peerCertificatePem) } : {}),
      },
      destination: { address: { socket_address: { address: '10.0.0.1', port_value: 8080 } } },
      request: { time: { seconds: String(Math.floor(Date.now() / 1000)) }, http },
      context_extensions: init.contextExtensions ?? {},
    },
  };
}

export interface HeaderOption {
  header: { key: string; value: string };
  append?: { value: boolean } | null;
}

export interface CheckResponseMsg {
  status?: { code?: number; message?: string };
  ok_response?: {
    headers?: HeaderOption[];
    headers_to_remove?: string[];
    response_headers_to_add?: HeaderOption[];
    query_parameters_to_remove?: string[];
  };
  denied_response?: { status?: { code?: string | number }; headers?: HeaderOption[]; body?: string };
  dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> };
}

const HTTP_STATUS_NAMES: Record<string, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  TooManyRequests: 429,
  ServiceUnavailable: 503,
};

export interface EnvoyOutcome {
  allowed: boolean;
  /** What the client receives: 200 (forwarded) or the local reply status. */
  status: number;
  /** Headers the upstream receives (allowed only), lowercase, joined like Envoy's map. */
  upstreamHeaders: Record<string, string>;
  /** Headers on the client's local reply (denied), or added to the upstream's reply (allowed). */
  clientHeaders: Record<string, string>;
  body?: string;
  /**
   * The `:path` the upstream receives (allowed only): Envoy re-parses the query on "&" without
   * decoding and drops every parameter whose raw name is in query_parameters_to_remove (case-sensitive).
   */
  upstreamPath?: string;
}

/**
 * Applies a CheckResponse the way Envoy does (docs/envoy.md, "What Envoy does with the answer"): only
 * status.code 0 allows; a deny answers denied_response.status or 403 when unset; on allow, header sets
 * (append false: overwrite; append true on an absent header: dropped) then removals, which skip
 * ':'-headers and host.
 */
export function applyEnvoy(request: ReturnType<typeof envoyCheckRequest>, res: CheckResponseMsg): EnvoyOutcome {
  const clientHeaders: Record<string, string> = {};
  if ((res.status?.code ?? 0) !== 0) {
    const code = res.denied_response?.status?.code;
    const status = typeof code === 'number' ? code : code ? (HTTP_STATUS_NAMES[code] ?? 403) : 403;
    for (const h of res.denied_response?.headers ?? []) {
      if (h.append?.value === true) continue; // dropped in the Denied branch
      clientHeaders[h.header.key.toLowerCase()] = h.header.value;
    }
    return {
      allowed: false,
      status: status || 403,
      upstreamHeaders: {},
      clientHeaders,
      body: res.denied_response?.body,
    };
  }
  const http = request.attributes.request.http as {
    headers?: Record<string, string>;
    header_map?: { headers: Array<{ key: string; raw_value: Buffer }> };
  };
  const upstream: Record<string, string> = {};
  if (http.headers) Object.assign(upstream, http.headers);
  else
    for (const h of http.header_map!.headers)
      upstream[h.key] = upstream[h.key] === undefined ? h.raw_value.toString() : `${upstream[h.key]},${h.raw_value}`;
  const ok = res.ok_response ?? {};
  for (const h of ok.headers ?? []) {
    const k = h.header.key.toLowerCase();
    if (h.append?.value === true) {
      if (upstream[k] !== undefined) upstream[k] = `${upstream[k]},${h.header.value}`;
      // else: silently dropped (ext_authz.cc TODO)
    } else {
      upstream[k] = h.header.value;
    }
  }
  for (const name of ok.headers_to_remove ?? []) {
    const k = name.toLowerCase();
    if (k.startsWith(':') || k === 'host') continue;
    delete upstream[k];
  }
  for (const h of ok.response_headers_to_add ?? []) clientHeaders[h.header.key.toLowerCase()] = h.header.value;
  const path = String((request.attributes.request.http as { path?: string }).path ?? '');
  const q = path.indexOf('?');
  let upstreamPath = path;
  if (q !== -1 && ok.query_parameters_to_remove?.length) {
    const kept = path
      .slice(q + 1)
      .split('&')
      .filter((p) => p !== '' && !ok.query_parameters_to_remove!.includes(p.split('=')[0]));
    upstreamPath = path.slice(0, q) + (kept.length ? `?${kept.join('&')}` : '');
    if (upstream[':path'] !== undefined) upstream[':path'] = upstreamPath;
  }
  return { allowed: true, status: 200, upstreamHeaders: upstream, clientHeaders, upstreamPath };
}
