// Helpers to read the Envoy configs in envoy/ and pick out the parts the deploy tests look at.
import { fileURLToPath } from 'node:url';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const ENVOY_CONFIGS = ['envoy/envoy.yaml', 'envoy/envoy-sidecar.yaml', 'envoy/envoy-mtls.yaml'].map(
  (f) => `${REPO}${f}`,
);
/** The MCP front proxy (docs/mcp.md): the same checks, plus its own (with_request_body, metadata routes). */
export const MCP_ENVOY_CONFIG = `${REPO}envoy/envoy-mcp.yaml`;

const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

export function findHcm(config: Json): Json {
  for (const l of config.static_resources.listeners) {
    for (const fc of l.filter_chains)
      for (const f of fc.filters) if (f.typed_config?.['@type'] === HCM_TYPE) return f.typed_config;
  }
  throw new Error('no http_connection_manager in the config');
}

export function extAuthzFilter(config: Json): Json {
  const f = findHcm(config).http_filters.find((x: Json) => x.name === 'envoy.filters.http.ext_authz');
  if (!f) throw new Error('no envoy.filters.http.ext_authz filter');
  return f.typed_config;
}

export interface EnvoyRoute {
  name?: string;
  /** path_separated_prefix, prefix or path, with its kind. */
  kind: 'path_separated_prefix' | 'prefix' | 'path';
  value: string;
  /** Methods allowed by a `:method` header matcher; undefined when the route matches any method. */
  methods?: string[];
  disabled: boolean;
  contextExtensions: Record<string, string>;
}

/** The methods a `:method` header matcher accepts (exact, or a `^(A|B)$` regex). */
function methodsOf(match: Json): string[] | undefined {
  const h = (match.headers ?? []).find((x: Json) => x.name === ':method');
  if (!h) return undefined;
  const sm = h.string_match ?? {};
  if (sm.exact) return [sm.exact];
  const m = /^\^\(([A-Z|]+)\)\$$/.exec(sm.safe_regex?.regex ?? '');
  if (!m) throw new Error(`unsupported :method matcher ${JSON.stringify(h)}`);
  return m[1].split('|');
}

export function envoyRoutes(config: Json): EnvoyRoute[] {
  const vhosts = findHcm(config).route_config.virtual_hosts;
  if (vhosts.length !== 1) throw new Error('expected one virtual host');
  return vhosts[0].routes.map((r: Json) => {
    const kind = (['path_separated_prefix', 'prefix', 'path'] as const).find((k) => r.match[k] !== undefined);
    if (!kind) throw new Error(`route ${r.name}: unsupported match ${JSON.stringify(r.match)}`);
    const per = r.typed_per_filter_config?.['envoy.filters.http.ext_authz'];
    return {
      name: r.name,
      kind,
      value: r.match[kind],
      methods: methodsOf(r.match),
      disabled: per?.disabled === true,
      contextExtensions: per?.check_settings?.context_extensions ?? {},
    };
  });
}

/** Envoy's route selection for one request: first route whose path and method match. */
export function envoySelect(routes: EnvoyRoute[], method: string, path: string): EnvoyRoute | undefined {
  return routes.find((r) => {
    if (r.methods && !r.methods.includes(method)) return false;
    if (r.kind === 'path') return path === r.value;
    if (r.kind === 'prefix') return path.startsWith(r.value);
    return path === r.value || path.startsWith(`${r.value}/`);
  });
}
