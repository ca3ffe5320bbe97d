// What Envoy's ext_authz filter does in http_service mode, driven by the settings in our shipped
// envoy/envoy-http-service.yaml: the request it sends to Portcullis and what it does with the answer.
// Sources: Envoy's ext_authz filter docs and its HTTP client,
// https://github.com/envoyproxy/envoy/blob/main/source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { httpRequest, type HttpResult } from './http.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export const ENVOY_HTTP_CONFIG = fileURLToPath(new URL('../../../envoy/envoy-http-service.yaml', import.meta.url));

export function loadEnvoyHttpConfig(): Json {
  return parse(readFileSync(ENVOY_HTTP_CONFIG, 'utf8'));
}

export function extAuthzOf(config: Json): Json {
  for (const l of config.static_resources.listeners) {
    for (const fc of l.filter_chains) {
      for (const f of fc.filters) {
        const ea = f.typed_config?.http_filters?.find((x: Json) => x.name === 'envoy.filters.http.ext_authz');
        if (ea) return ea.typed_config;
      }
    }
  }
  throw new Error('no ext_authz filter in envoy-http-service.yaml');
}

const exacts = (list: Json): string[] =>
  (list?.patterns ?? []).map((p: Json) => {
    if (p.exact === undefined) throw new Error(`only exact matchers are simulated: ${JSON.stringify(p)}`);
    return p.exact as string;
  });

export interface EnvoyHttpSettings {
  pathPrefix: string;
  allowedHeaders: string[];
  headersToAdd: Array<{ key: string; value: string }>;
  allowedUpstream: string[];
  allowedClient: string[];
  allowedClientOnSuccess: string[];
  statusOnError: number;
  /** Removed from the client's request by the header_mutation filter placed before ext_authz. */
  strippedBeforeAuthz: string[];
}

function headerMutationRemovals(config: Json): string[] {
  const out: string[] = [];
  for (const l of config.static_resources.listeners) {
    for (const fc of l.filter_chains) {
      for (const f of fc.filters) {
        const filters: Json[] = f.typed_config?.http_filters ?? [];
        for (const hf of filters) {
          if (hf.name === 'envoy.filters.http.ext_authz') return out; // only filters that run before it
          if (hf.name !== 'envoy.filters.http.header_mutation') continue;
          for (const m of hf.typed_config.mutations?.request_mutations ?? []) if (m.remove) out.push(m.remove);
        }
      }
    }
  }
  return out;
}

export function envoyHttpSettings(config: Json = loadEnvoyHttpConfig()): EnvoyHttpSettings {
  const ea = extAuthzOf(config);
  const hs = ea.http_service;
  return {
    pathPrefix: hs.path_prefix ?? '',
    allowedHeaders: exacts(ea.allowed_headers),
    headersToAdd: hs.authorization_request?.headers_to_add ?? [],
    allowedUpstream: exacts(hs.authorization_response?.allowed_upstream_headers),
    allowedClient: exacts(hs.authorization_response?.allowed_client_headers),
    allowedClientOnSuccess: exacts(hs.authorization_response?.allowed_client_headers_on_success),
    statusOnError: ea.status_on_error?.code === 'ServiceUnavailable' ? 503 : 403,
    strippedBeforeAuthz: headerMutationRemovals(config),
  };
}

export interface ClientRequest {
  method?: string;
  /** :path, with the query. */
  path: string;
  host?: string;
  headers?: Array<[string, string]>;
  /** The downstream peer address Envoy sees. */
  clientIp?: string;
}

export interface EnvoyHttpOutcome {
  allowed: boolean;
  /** What the client gets: 200 when forwarded, else the local reply status. */
  status: number;
  /** Upstream request headers (allowed only), lowercase, repeats joined with ",". */
  upstreamHeaders: Record<string, string>;
  /** Local reply headers (denied) or headers added to the upstream's response (allowed). */
  clientHeaders: Record<string, string>;
  body: string;
  /** The raw answer from Portcullis. */
  authz: HttpResult;
}

/** Header map the filter starts from: lowercase names, repeats joined with "," (no space). */
function headerMap(req: ClientRequest): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [k, v] of req.headers ?? []) {
    const lk = k.toLowerCase();
    map[lk] = map[lk] === undefined ? v : `${map[lk]},${v}`;
  }
  return map;
}

/**
 * Sends the authorization request Envoy would send to Portcullis's ops port and applies the answer
 * as Envoy does. `fromAddress` is the local address the "Envoy" connects from (a trusted proxy).
 */
export async function envoyHttpCheck(
  opsPort: number,
  req: ClientRequest,
  opts: { settings?: EnvoyHttpSettings; fromAddress?: string; envoyAddress?: string } = {},
): Promise<EnvoyHttpOutcome> {
  const s = opts.settings ?? envoyHttpSettings();
  const original = headerMap(req);
  for (const name of s.strippedBeforeAuthz) delete original[name];
  const allowed = new Set([...s.allowedHeaders, 'authorization']);
  const lines: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(original))
    if (allowed.has(k) && k !== 'host' && k !== 'content-length') lines.push([k, v]);
  // authorization_request.headers_to_add: overwrite, with Envoy's formatters evaluated.
  for (const h of s.headersToAdd) {
    const value = h.value.replace('%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', req.clientIp ?? '203.0.113.9');
    for (let i = lines.length - 1; i >= 0; i--) if (lines[i][0] === h.key) lines.splice(i, 1);
    lines.push([h.key, value]);
  }
  // The async HTTP client marks the call internal and appends Envoy's own address to XFF.
  lines.push(['x-envoy-internal', 'true']);
  const xffIndex = lines.findIndex(([k]) => k === 'x-forwarded-for');
  const envoyAddr = opts.envoyAddress ?? '10.0.0.2';
  if (xffIndex >= 0) lines[xffIndex][1] = `${lines[xffIndex][1]},${envoyAddr}`;
  else lines.push(['x-forwarded-for', envoyAddr]);
  lines.push(['content-length', '0']);

  const authz = await httpRequest(opsPort, {
    method: req.method ?? 'GET',
    path: s.pathPrefix + req.path,
    host: req.host ?? 'api.example.com',
    headers: lines,
    localAddress: opts.fromAddress,
  });
  const flat = flatHeaders(authz);

  if (authz.status >= 500) {
    // Error: status_on_error, no body, no headers from the service (#14001).
    return { allowed: false, status: s.statusOnError, upstreamHeaders: {}, clientHeaders: {}, body: '', authz };
  }
  if (authz.status !== 200) {
    const pass = new Set([...s.allowedClient, 'www-authenticate', 'location', 'content-length']);
    const clientHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(flat))
      if (s.allowedClient.length === 0 ? k !== 'host' : pass.has(k)) clientHeaders[k] = v;
    return { allowed: false, status: authz.status, upstreamHeaders: {}, clientHeaders, body: authz.body, authz };
  }
  const upstream: Record<string, string> = { ...original };
  for (const name of s.allowedUpstream) if (flat[name] !== undefined) upstream[name] = flat[name];
  for (const name of (flat['x-envoy-auth-headers-to-remove'] ?? '').split(',')) {
    const k = name.trim().toLowerCase();
    if (!k || k.startsWith(':') || k === 'host') continue;
    delete upstream[k];
  }
  const clientHeaders: Record<string, string> = {};
  for (const name of s.allowedClientOnSuccess) if (flat[name] !== undefined) clientHeaders[name] = flat[name];
  return { allowed: true, status: 200, upstreamHeaders: upstream, clientHeaders, body: '', authz };
}

function flatHeaders(r: HttpResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < r.rawHeaders.length; i += 2) {
    const k = r.rawHeaders[i].toLowerCase();
    out[k] = out[k] === undefined ? r.rawHeaders[i + 1] : `${out[k]},${r.rawHeaders[i + 1]}`;
  }
  return out;
}
