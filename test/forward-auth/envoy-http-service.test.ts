// envoy/envoy-http-service.yaml: loads into Envoy's own protos (same checker as envoy/*.yaml) and
// carries the settings forward-auth relies on. endpoint.test.ts drives Portcullis through it.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/policy/load.ts';
import { checkEnvoyBootstrap } from '../deploy/support/envoy-proto-check.ts';
import { envoyHttpSettings, extAuthzOf, loadEnvoyHttpConfig } from './support/envoy-http.ts';

const config = loadEnvoyHttpConfig();
const defaults = parseConfig('{}');

describe('envoy/envoy-http-service.yaml', () => {
  it('loads into envoy.config.bootstrap.v3.Bootstrap with no unknown, deprecated or missing field', () => {
    const { errors, types } = checkEnvoyBootstrap(config);
    expect(errors).toEqual([]);
    expect(types).toContain('envoy.extensions.filters.http.ext_authz.v3.ExtAuthz');
  });

  it('the checker can fail: a deprecated or misspelled field is reported', () => {
    const bad = structuredClone(config);
    const ea = extAuthzOf(bad);
    ea.http_service.authorization_request.allowed_headers = { patterns: [{ exact: 'x-api-key' }] };
    ea.http_service.path_prefx = '/authz';
    const { errors } = checkEnvoyBootstrap(bad);
    expect(errors.join('\n')).toContain('deprecated');
    expect(errors.join('\n')).toContain('path_prefx');
  });

  it('calls Portcullis over HTTP on forward_auth.path_prefix, fail-closed with 503 on error', () => {
    const ea = extAuthzOf(config);
    expect(ea.grpc_service).toBeUndefined();
    expect(ea.http_service.path_prefix).toBe(defaults.forward_auth.path_prefix);
    expect(ea.failure_mode_allow).toBe(false);
    expect(ea.status_on_error).toEqual({ code: 'ServiceUnavailable' });
    expect(ea.http_service.server_uri.timeout).toBe('0.25s');
    const cluster = config.static_resources.clusters.find(
      (c: { name: string }) => c.name === ea.http_service.server_uri.cluster,
    );
    expect(cluster.health_checks[0].http_health_check.path).toBe('/readyz');
  });

  it('lets through what Portcullis decides on, and copies every default identity header upstream', () => {
    const s = envoyHttpSettings(config);
    for (const h of defaults.credentials.api_key?.headers ?? ['x-api-key']) expect(s.allowedHeaders).toContain(h);
    for (const h of ['x-http-method-override', 'x-http-method', 'x-method-override', 'x-request-id'])
      expect(s.allowedHeaders).toContain(h);
    // Lowercase only: Envoy's exact matchers are case-sensitive.
    for (const h of [...s.allowedHeaders, ...s.allowedUpstream, ...s.allowedClient]) expect(h).toBe(h.toLowerCase());
    for (const h of Object.keys(defaults.headers.set)) expect(s.allowedUpstream).toContain(h);
    expect(s.headersToAdd).toEqual([{ key: 'x-real-ip', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' }]);
    for (const h of ['retry-after', 'ratelimit', 'ratelimit-policy', 'content-type'])
      expect(s.allowedClient).toContain(h);
  });

  it('strips client identity headers before ext_authz (header_mutation first, router last)', () => {
    const s = envoyHttpSettings(config);
    for (const h of [...defaults.headers.strip, ...Object.keys(defaults.headers.set)])
      expect(s.strippedBeforeAuthz).toContain(h);
    const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    expect(hcm.http_filters.map((f: { name: string }) => f.name)).toEqual([
      'envoy.filters.http.header_mutation',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.router',
    ]);
    expect(hcm.route_config.virtual_hosts[0].routes.at(-1).match).toEqual({ prefix: '/' });
  });
});
