// Each Envoy config in envoy/ loads into Envoy's own protos (Bootstrap, every typed_config resolved)
// with no unknown field, bad enum, unknown @type or missing required field; and it carries every
// ext_authz setting the deployment guide promises. The negative cases prove the checker can fail.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { checkEnvoyBootstrap } from './support/envoy-proto-check.ts';
import { loadConfigFile } from '../../src/policy/load.ts';
import { resourceLocation } from '../../src/resources/resource-id.ts';
import { ENVOY_CONFIGS, extAuthzFilter, findHcm, MCP_ENVOY_CONFIG, REPO, type Json } from './support/envoy-config.ts';

const clone = <T>(v: T): T => structuredClone(v);

describe.each([...ENVOY_CONFIGS, MCP_ENVOY_CONFIG])('%s', (file) => {
  const config = parse(readFileSync(file, 'utf8'));

  it('loads into envoy.config.bootstrap.v3.Bootstrap with every @type resolved', () => {
    const { errors, types } = checkEnvoyBootstrap(config);
    expect(errors).toEqual([]);
    expect([...types].sort()).toEqual(
      [
        'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
        'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
        'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
        'envoy.extensions.filters.http.header_mutation.v3.HeaderMutation',
        'envoy.extensions.filters.http.router.v3.Router',
        'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        ...(file.endsWith('envoy-mtls.yaml') ? ['envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext'] : []),
      ].sort(),
    );
  });

  it('hands Portcullis the client certificate, and never a client-written x-forwarded-client-cert', () => {
    expect(extAuthzFilter(config).include_peer_certificate).toBe(true);
    const hcm = findHcm(config);
    if (!file.endsWith('envoy-mtls.yaml')) {
      expect(hcm.forward_client_cert_details).toBe('SANITIZE');
      return;
    }
    // The mutual-TLS edge: a verified client certificate, and exactly one XFCC element of its own.
    const tls = config.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config;
    expect(tls.require_client_certificate).toBe(true);
    expect(tls.common_tls_context.validation_context.trusted_ca.filename).toMatch(/\.pem$/);
    expect(hcm.forward_client_cert_details).toBe('SANITIZE_SET');
    expect(hcm.set_current_client_cert_details).toEqual({ cert: true, uri: true });
  });

  it('hardens path and header handling on the connection manager', () => {
    const hcm = findHcm(config);
    expect(hcm.normalize_path).toBe(true);
    expect(hcm.merge_slashes).toBe(true);
    expect(hcm.path_with_escaped_slashes_action).toBe('REJECT_REQUEST');
    expect(hcm.common_http_protocol_options.headers_with_underscores_action).toBe('REJECT_REQUEST');
  });

  it('runs header_mutation (stripping identity headers) before ext_authz, and the router last', () => {
    const hcm = findHcm(config);
    const names = hcm.http_filters.map((f: Json) => f.name);
    expect(names).toEqual([
      'envoy.filters.http.header_mutation',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.router',
    ]);
    const removed = hcm.http_filters[0].typed_config.mutations.request_mutations.map((m: Json) => m.remove);
    // Portcullis' default identity headers (schema.ts headers.strip / headers.set) and the failure-mode marker.
    for (const h of ['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method', 'x-envoy-auth-failure-mode-allowed'])
      expect(removed).toContain(h);
  });

  it('configures ext_authz fail-closed over gRPC v3 with 503 on error', () => {
    const ea = extAuthzFilter(config);
    expect(ea.transport_api_version).toBe('V3');
    expect(ea.failure_mode_allow).toBe(false);
    expect(ea.status_on_error).toEqual({ code: 'ServiceUnavailable' });
    expect(ea.grpc_service.envoy_grpc.cluster_name).toBe('portcullis');
    // Envoy's Check deadline; Portcullis budgets network fetches inside it.
    expect(ea.grpc_service.timeout).toBe('0.25s');
  });

  it('talks HTTP/2 to Portcullis and health-checks the Authorization service', () => {
    const cluster = config.static_resources.clusters.find((c: Json) => c.name === 'portcullis');
    const opts = cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    expect(opts.explicit_http_config).toHaveProperty('http2_protocol_options');
    expect(cluster.health_checks).toHaveLength(1);
    expect(cluster.health_checks[0].grpc_health_check.service_name).toBe('envoy.service.auth.v3.Authorization');
  });

  it('logs the ext_authz dynamic metadata Portcullis emits', () => {
    const hcm = findHcm(config);
    const fmt = JSON.stringify(hcm.access_log[0].typed_config.log_format);
    for (const k of ['decision', 'reason', 'route', 'method', 'client_id', 'subject']) {
      expect(fmt).toContain(`%DYNAMIC_METADATA(envoy.filters.http.ext_authz:${k})%`);
    }
  });

  it('uses only access-log commands Envoy knows', () => {
    const fmt = JSON.stringify(findHcm(config).access_log[0].typed_config.log_format);
    const commands = [...fmt.matchAll(/%([A-Z_]+)(\([^)]*\))?%/g)].map((m) => m[1]);
    const known = [
      'START_TIME',
      'REQ',
      'RESPONSE_CODE',
      'RESPONSE_FLAGS',
      'RESPONSE_CODE_DETAILS',
      'DURATION',
      'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
      'DYNAMIC_METADATA',
    ];
    expect(commands.length).toBeGreaterThan(5);
    expect(commands.filter((c) => !known.includes(c))).toEqual([]);
    // Every %…% is a whole command (an unbalanced one is a startup error in Envoy).
    for (const v of Object.values(
      findHcm(config).access_log[0].typed_config.log_format.json_format as Record<string, string>,
    )) {
      expect(v, v).toMatch(/^%[A-Z_]+(\([^)]*\))?%$/);
    }
  });

  it('ends with a catch-all route on which ext_authz runs', () => {
    const routes = findHcm(config).route_config.virtual_hosts[0].routes;
    const last = routes[routes.length - 1];
    expect(last.match).toEqual({ prefix: '/' });
    expect(last.typed_per_filter_config).toBeUndefined();
  });
});

describe('envoy/envoy-mcp.yaml with examples/mcp.yaml', () => {
  const config = parse(readFileSync(MCP_ENVOY_CONFIG, 'utf8'));
  const portcullis = loadConfigFile(`${REPO}examples/mcp.yaml`).config;
  const routes: Json[] = findHcm(config).route_config.virtual_hosts[0].routes;

  it("buffers whole bodies for Check, as raw bytes, up to the MCP routes' max_body_bytes", () => {
    expect(extAuthzFilter(config).with_request_body).toEqual({
      max_request_bytes: 1048576,
      allow_partial_message: false,
      pack_as_bytes: true,
    });
    for (const r of portcullis.routes.filter((x) => x.mcp)) expect(r.mcp!.max_body_bytes, r.name).toBe(1048576);
  });

  it('routes every metadata document, by exact path and without ext_authz, to the ops listener', () => {
    const wellKnown = portcullis.protected_resources.flatMap((r) => resourceLocation(r.resource).wellKnownPaths);
    expect(wellKnown).toEqual(['/.well-known/oauth-protected-resource/mcp']);
    const metadataRoutes = routes.filter((r) => r.route?.cluster === 'portcullis_ops');
    expect(metadataRoutes.map((r) => r.match)).toEqual(wellKnown.map((path) => ({ path })));
    for (const r of metadataRoutes)
      expect(r.typed_per_filter_config['envoy.filters.http.ext_authz'].disabled).toBe(true);
    const ops = config.static_resources.clusters.find((c: Json) => c.name === 'portcullis_ops');
    const port = ops.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value;
    expect(portcullis.server.http.address).toBe(`0.0.0.0:${port}`);
  });

  it('logs the tool of an MCP call', () => {
    expect(JSON.stringify(findHcm(config).access_log[0].typed_config.log_format)).toContain(
      '%DYNAMIC_METADATA(envoy.filters.http.ext_authz:mcp_tool)%',
    );
  });
});

describe('the checker rejects broken configs', () => {
  const good = parse(readFileSync(ENVOY_CONFIGS[0], 'utf8'));

  it('a typo in a field name, with a hint', () => {
    const c = clone(good);
    const hcm = findHcm(c);
    hcm.merge_slahes = hcm.merge_slashes;
    delete hcm.merge_slashes;
    expect(checkEnvoyBootstrap(c).errors).toEqual([
      expect.stringMatching(
        /merge_slahes: unknown field "merge_slahes" in envoy\.extensions\.filters\.network\.http_connection_manager\.v3\.HttpConnectionManager \(did you mean merge_slashes\?\)/,
      ),
    ]);
  });

  it('a misspelled field inside a per-route typed config', () => {
    const c = clone(good);
    const route = findHcm(c).route_config.virtual_hosts[0].routes[1];
    route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extension = {
      'portcullis.route': 'x',
    };
    expect(checkEnvoyBootstrap(c).errors.join('\n')).toMatch(
      /unknown field "context_extension" in envoy\.extensions\.filters\.http\.ext_authz\.v3\.CheckSettings/,
    );
  });

  it('an enum value that does not exist', () => {
    const c = clone(good);
    findHcm(c).path_with_escaped_slashes_action = 'REJECT';
    expect(checkEnvoyBootstrap(c).errors.join('\n')).toMatch(/"REJECT" is not a value of enum/);
    const d = clone(good);
    extAuthzFilter(d).status_on_error.code = 'Unavailable';
    expect(checkEnvoyBootstrap(d).errors.join('\n')).toMatch(
      /"Unavailable" is not a value of enum envoy\.type\.v3\.StatusCode/,
    );
  });

  it('an @type that names no message', () => {
    const c = clone(good);
    findHcm(c).http_filters[1].typed_config['@type'] =
      'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuth';
    expect(checkEnvoyBootstrap(c).errors.join('\n')).toMatch(
      /unknown type "envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuth"/,
    );
  });

  it('a missing PGV-required field, and a required oneof left empty', () => {
    const c = clone(good);
    delete c.static_resources.clusters[0].health_checks[0].interval;
    const route = findHcm(c).route_config.virtual_hosts[0].routes[0];
    delete route.typed_per_filter_config['envoy.filters.http.ext_authz'].disabled;
    const errors = checkEnvoyBootstrap(c).errors.join('\n');
    expect(errors).toMatch(
      /health_checks\[0\]\.interval: required field "interval" of envoy\.config\.core\.v3\.HealthCheck is missing/,
    );
    expect(errors).toMatch(
      /oneof "override" of envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthzPerRoute requires one of: disabled, check_settings/,
    );
  });

  it('a deprecated field (the cluster-level http2_protocol_options)', () => {
    const c = clone(good);
    c.static_resources.clusters[0].http2_protocol_options = {};
    expect(checkEnvoyBootstrap(c).errors.join('\n')).toMatch(
      /field "http2_protocol_options" of envoy\.config\.cluster\.v3\.Cluster is deprecated/,
    );
  });

  it('a wrong value type, a bad duration and a violated bound', () => {
    const c = clone(good);
    extAuthzFilter(c).failure_mode_allow = 'false';
    extAuthzFilter(c).grpc_service.timeout = '250ms';
    findHcm(c).route_config.virtual_hosts[0].routes[0].typed_per_filter_config[
      'envoy.filters.http.ext_authz'
    ].disabled = false;
    const errors = checkEnvoyBootstrap(c).errors.join('\n');
    expect(errors).toMatch(/failure_mode_allow: expected true or false/);
    expect(errors).toMatch(/timeout: expected a duration like "1s"/);
    expect(errors).toMatch(/disabled: must be true/);
  });
});

describe('docs/deployment.md', () => {
  it('the TLS transport socket snippet for the portcullis cluster is valid Envoy config', () => {
    const doc = readFileSync(ENVOY_CONFIGS[0].replace('envoy/envoy.yaml', 'docs/deployment.md'), 'utf8');
    const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1])
      .find((b) => b.trimStart().startsWith('transport_socket:'));
    expect(block).toBeDefined();
    const c = parse(readFileSync(ENVOY_CONFIGS[0], 'utf8'));
    const cluster = c.static_resources.clusters.find((x: Json) => x.name === 'portcullis');
    Object.assign(cluster, parse(block!));
    const { errors, types } = checkEnvoyBootstrap(c);
    expect(errors).toEqual([]);
    expect(types).toContain('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
  });
});
