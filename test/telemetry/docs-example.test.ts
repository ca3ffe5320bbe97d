// The worked example of docs/tracing.md holds: its Envoy blocks, merged into envoy/envoy.yaml where
// the page says, load into Envoy's own protos; the tracer's cluster and the collector's receivers
// agree on ports; the Portcullis block is a valid config section that points at the collector's
// OTLP/HTTP receiver.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/policy/load.ts';
import { resolveTracing } from '../../src/telemetry/config.ts';
import { checkEnvoyBootstrap } from '../deploy/support/envoy-proto-check.ts';
import { findHcm, REPO, type Json } from '../deploy/support/envoy-config.ts';

const page = readFileSync(`${REPO}docs/tracing.md`, 'utf8');
const example = page.slice(page.indexOf('## Worked example'));
const blocks = [...example.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);

describe('docs/tracing.md, worked example', () => {
  it('has the collector, Portcullis, Envoy tracer and Envoy cluster blocks', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  const [collectorYaml, portcullisYaml, tracerYaml, clusterYaml] = blocks;
  const collector = parse(collectorYaml);
  const tracer = parse(tracerYaml);
  const cluster = (parse(clusterYaml) as Json[])[0];

  it("Envoy's tracer and cluster load into envoy.config.bootstrap.v3.Bootstrap", () => {
    const config = parse(readFileSync(`${REPO}envoy/envoy.yaml`, 'utf8'));
    findHcm(config).tracing = tracer.tracing;
    config.static_resources.clusters.push(cluster);
    const { errors, types } = checkEnvoyBootstrap(config);
    expect(errors).toEqual([]);
    expect(types).toContain('envoy.config.trace.v3.OpenTelemetryConfig');
    // The tracer sends to the cluster, over HTTP/2 (OTLP/gRPC), at the collector's gRPC port.
    const otel = tracer.tracing.provider.typed_config;
    expect(otel.grpc_service.envoy_grpc.cluster_name).toBe(cluster.name);
    expect(cluster.typed_extension_protocol_options).toBeDefined();
    const port = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value;
    expect(collector.receivers.otlp.protocols.grpc.endpoint).toBe(`0.0.0.0:${port}`);
    expect(collector.service.pipelines.traces.receivers).toEqual(['otlp']);
  });

  it('the check would catch a wrong tracer field', () => {
    const config = parse(readFileSync(`${REPO}envoy/envoy.yaml`, 'utf8'));
    const wrong = structuredClone(tracer.tracing);
    wrong.provider.typed_config.service_nam = 'envoy';
    findHcm(config).tracing = wrong;
    config.static_resources.clusters.push(cluster);
    expect(checkEnvoyBootstrap(config).errors.join('\n')).toMatch(/service_nam/);
  });

  it("Portcullis's section is valid and exports to the collector's OTLP/HTTP receiver", () => {
    const config = parseConfig(portcullisYaml);
    const resolved = resolveTracing(config.tracing, {});
    expect(resolved.enabled).toBe(true);
    if (!resolved.enabled) return;
    const url = new URL(resolved.endpoint);
    expect(url.pathname).toBe('/v1/traces');
    const httpPort = collector.receivers.otlp.protocols.http.endpoint.split(':')[1];
    expect(url.port).toBe(httpPort);
    // The collector's host is the one Envoy's cluster names.
    expect(url.hostname).toBe(
      cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address,
    );
  });
});
