// deploy/envoy-gateway and deploy/istio: every manifest parsed and validated against its API (the
// Kubernetes and Gateway API schemas and types of kubernetes-models, Istio's from
// @kubernetes-models/istio, Envoy Gateway's and Istio's mesh config from the schemas in
// support/control-plane-api.ts), then the wiring the recipes rely on: names, ports and namespaces
// that agree with deploy/kubernetes/base, fail-closed ext_authz, header hygiene, and Envoy
// Gateway's routes against the Portcullis config. Last, `kubectl kustomize` renders every overlay in
// deploy/ the same as the test's kustomize subset, where kubectl is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/policy/load.ts';
import type { Config } from '../../src/policy/schema.ts';
import { extAuthzFilter, REPO, type Json } from './support/envoy-config.ts';
import {
  envoyGatewaySchema,
  extensionProvider,
  meshConfig,
  problems,
  securityPolicy,
} from './support/control-plane-api.ts';
import { hasModel, schemaErrors, typeErrors } from './support/k8s-validate.ts';
import { kustomizeBuild, type K8sObject } from './support/kustomize.ts';
import { disagreements, gatewayRoutes } from './support/route-agreement.ts';

const BASE = `${REPO}deploy/kubernetes/base`;
const EG = `${REPO}deploy/envoy-gateway`;
const ISTIO = `${REPO}deploy/istio`;
const env = { INTROSPECTION_CLIENT_SECRET: 'x' };

const find = (objs: K8sObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o;
};
const all = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const withoutNamespace = (o: K8sObject) => ({ ...o, metadata: { ...o.metadata, namespace: undefined } });
const readYaml = (file: string) => parse(readFileSync(file, 'utf8'));

/** Validation problems of every object, each against the schema of its API. */
async function apiProblems(objs: K8sObject[]): Promise<string[]> {
  const out: string[] = [];
  const modelled = objs.filter(hasModel);
  out.push(...(await schemaErrors(modelled)));
  for (const o of objs.filter((x) => !hasModel(x))) {
    const schema = envoyGatewaySchema(o.kind);
    if (!schema) out.push(`${o.kind}/${o.metadata?.name}: no schema known for ${o.apiVersion} ${o.kind}`);
    else out.push(...problems(schema, o).map((p) => `${o.kind}/${o.metadata.name}: ${p}`));
  }
  return out;
}

/** The Portcullis config the build mounts, parsed and validated. */
function portcullisConfig(objs: K8sObject[]): Config {
  return parseConfig(find(objs, 'ConfigMap', 'portcullis-config').data['portcullis.yaml'], 'portcullis.yaml', env);
}

/** The base's Portcullis Service port that carries gRPC, checked against the container and config. */
function grpcPort(objs: K8sObject[]): number {
  const svc = find(objs, 'Service', 'portcullis');
  const port = svc.spec.ports.find((p: Json) => p.name === 'grpc');
  const container = find(objs, 'Deployment', 'portcullis').spec.template.spec.containers.find(
    (c: Json) => c.name === 'portcullis',
  );
  const target = container.ports.find((p: Json) => p.name === port.targetPort).containerPort;
  expect(Number(portcullisConfig(objs).server.grpc.address.split(':').pop())).toBe(target);
  return port.port;
}

let base: K8sObject[];
beforeAll(() => {
  base = kustomizeBuild(BASE);
});

describe('Envoy Gateway (deploy/envoy-gateway)', () => {
  let objs: K8sObject[];
  let typeProblems: string[];
  beforeAll(() => {
    objs = kustomizeBuild(EG);
    typeProblems = typeErrors(objs.filter(hasModel));
  });
  const extAuths = () => all(objs, 'SecurityPolicy').map((p) => p.spec.extAuth);

  it('every object validates against its API: Kubernetes, Gateway API and Envoy Gateway schemas and types', async () => {
    expect(objs.map((o) => o.kind)).toEqual(
      expect.arrayContaining([
        'Deployment',
        'Service',
        'Gateway',
        'HTTPRoute',
        'SecurityPolicy',
        'ClientTrafficPolicy',
        'NetworkPolicy',
      ]),
    );
    expect(await apiProblems(objs)).toEqual([]);
    expect(typeProblems).toEqual([]);
  });

  it('reuses the Kubernetes base unchanged, in namespace portcullis, apart from who may reach gRPC', () => {
    for (const o of base) {
      if (o.kind === 'NetworkPolicy') continue;
      expect(withoutNamespace(find(objs, o.kind, o.metadata.name)), `${o.kind}/${o.metadata.name}`).toEqual(o);
    }
    expect(new Set(objs.map((o) => o.metadata.namespace))).toEqual(new Set(['portcullis']));
  });

  it('every SecurityPolicy calls the Portcullis Service on its gRPC port, fails closed with 503, within a short deadline, health-checked', () => {
    const port = grpcPort(objs);
    // The gRPC health service Portcullis reports on, and the same one envoy/envoy.yaml checks.
    const envoy = readYaml(`${REPO}envoy/envoy.yaml`);
    const healthService = envoy.static_resources.clusters.find((c: Json) => c.name === 'portcullis').health_checks[0]
      .grpc_health_check.service_name;
    expect(extAuthzFilter(envoy).status_on_error).toEqual({ code: 'ServiceUnavailable' });
    expect(extAuths()).toHaveLength(4);
    for (const e of extAuths()) {
      expect(e.grpc.backendRefs).toEqual([{ name: 'portcullis', port }]); // same namespace, kind Service (defaults)
      expect(e.failOpen).toBe(false);
      expect(e.statusOnError).toBe(503); // as envoy/envoy.yaml's status_on_error (checked below)
      expect(e.timeout).toBe('250ms');
      expect(e.grpc.backendSettings.healthCheck.active).toMatchObject({
        type: 'GRPC',
        grpc: { service: healthService },
      });
    }
  });

  it('sends Portcullis every request header (no headersToExtAuth), so it can remove the identity headers it does not set', () => {
    for (const e of extAuths()) expect(e).not.toHaveProperty('headersToExtAuth');
  });

  it('puts every route through Portcullis: a Gateway-wide policy, and HTTPRoutes and Gateway that exist', () => {
    const gateway = find(objs, 'Gateway', 'api');
    const gatewayPolicy = all(objs, 'SecurityPolicy').filter((p) =>
      p.spec.targetRefs.some((t: Json) => t.kind === 'Gateway'),
    );
    expect(gatewayPolicy.map((p) => p.spec.targetRefs)).toEqual([
      [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: gateway.metadata.name }],
    ]);
    expect(gatewayPolicy[0].spec.extAuth.contextExtensions).toBeUndefined();
    for (const p of [...all(objs, 'SecurityPolicy'), ...all(objs, 'ClientTrafficPolicy')]) {
      for (const t of p.spec.targetRefs)
        expect(() => find(objs, t.kind, t.name), `${p.kind}/${p.metadata.name}`).not.toThrow();
    }
    const routes = gatewayRoutes(objs, gateway.metadata.name);
    expect(routes.filter((r) => r.disabled)).toEqual([]);
    for (const hr of all(objs, 'HTTPRoute')) {
      expect(hr.spec.parentRefs).toEqual([{ name: gateway.metadata.name }]);
      for (const rule of hr.spec.rules) {
        for (const ref of rule.backendRefs)
          expect(find(objs, 'Service', ref.name).spec.ports.map((p: Json) => p.port)).toContain(ref.port);
      }
    }
  });

  it('HTTPRoutes and portcullis.route context extensions agree with the Portcullis config', () => {
    const routes = gatewayRoutes(objs, 'api');
    expect(disagreements(routes, portcullisConfig(objs))).toEqual([]);
    // Not vacuous: three routes pinned, each by its own policy, with Envoy Gateway's Value type.
    expect(new Set(routes.map((r) => r.contextExtensions['portcullis.route']).filter(Boolean))).toEqual(
      new Set(['orders-read', 'orders-write', 'reports']),
    );
    for (const e of extAuths()) for (const c of e.contextExtensions ?? []) expect(c.type).toBe('Value');
  });

  it('strips every identity header Portcullis sets or strips at the listener, before ext_authz (ClientTrafficPolicy early headers)', () => {
    const ctp = find(objs, 'ClientTrafficPolicy', 'portcullis-header-hygiene');
    expect(ctp.spec.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'api' }]);
    const early = ctp.spec.headers.earlyRequestHeaders;
    const { headers } = portcullisConfig(objs);
    for (const h of [...headers.strip, ...Object.keys(headers.set), 'x-envoy-auth-failure-mode-allowed'])
      expect(early.remove).toContain(h);
    for (const p of headers.strip_prefixes) expect(early.removeOnMatch).toContainEqual({ type: 'Prefix', value: p });
    expect(early.set ?? []).toEqual([]);
    expect(ctp.spec.headers.withUnderscoresAction).toBe('RejectRequest');
    expect(ctp.spec.path.escapedSlashesAction).toBe('RejectRequest');
  });

  it('lets only the Envoy proxies of Envoy Gateway reach gRPC; Prometheus keeps the ops port', () => {
    // The labels Envoy Gateway puts on the Envoy Pods it runs (EnvoyAppLabel in
    // https://github.com/envoyproxy/gateway/blob/main/internal/infrastructure/kubernetes/proxy/resource.go),
    // in envoy-gateway-system, its default namespace for them.
    const proxyLabels = {
      'app.kubernetes.io/name': 'envoy',
      'app.kubernetes.io/component': 'proxy',
      'app.kubernetes.io/managed-by': 'envoy-gateway',
    };
    const np = find(objs, 'NetworkPolicy', 'portcullis');
    const port = grpcPort(objs);
    const grpcRules = np.spec.ingress.filter((r: Json) => r.ports.some((p: Json) => p.port === port));
    expect(grpcRules).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
            podSelector: { matchLabels: proxyLabels },
          },
        ],
        ports: [{ port, protocol: 'TCP' }],
      },
    ]);
    const baseOps = find(base, 'NetworkPolicy', 'portcullis').spec.ingress.filter((r: Json) =>
      r.ports.some((p: Json) => p.port === 9192),
    );
    expect(np.spec.ingress.filter((r: Json) => r.ports.some((p: Json) => p.port === 9192))).toEqual(baseOps);
    expect(
      matches(np.spec.podSelector.matchLabels, find(objs, 'Deployment', 'portcullis').spec.template.metadata.labels),
    ).toBe(true);
  });
});

describe('Istio (deploy/istio)', () => {
  let portcullis: K8sObject[];
  let sidecar: K8sObject[];
  let ambient: K8sObject[];
  let typeProblems: string[];
  const values = () => readYaml(`${ISTIO}/istiod-values.yaml`);
  const operator = () => readYaml(`${ISTIO}/istio-operator.yaml`);
  beforeAll(() => {
    portcullis = kustomizeBuild(ISTIO);
    sidecar = kustomizeBuild(`${ISTIO}/sidecar`);
    ambient = kustomizeBuild(`${ISTIO}/ambient`);
    typeProblems = typeErrors([...portcullis, ...sidecar, ...ambient].filter(hasModel));
  });

  it('every object validates against its API: Kubernetes, Istio and Gateway API schemas and types', async () => {
    expect(sidecar.map((o) => o.kind).sort()).toEqual(['AuthorizationPolicy', 'Deployment', 'Namespace', 'Service']);
    expect(ambient.map((o) => o.kind).sort()).toEqual([
      'AuthorizationPolicy',
      'Deployment',
      'Gateway',
      'Namespace',
      'Service',
    ]);
    expect(await apiProblems([...portcullis, ...sidecar, ...ambient])).toEqual([]);
    expect(typeProblems).toEqual([]);
  });

  it('the mesh config registers the Portcullis provider: the same in the Helm values and the IstioOperator, valid against MeshConfig', async () => {
    expect(Object.keys(values())).toEqual(['meshConfig']);
    expect(problems(meshConfig, values().meshConfig)).toEqual([]);
    expect(await schemaErrors([operator()])).toEqual([]);
    expect(Object.keys(operator().spec)).toEqual(['meshConfig']);
    expect(operator().spec.meshConfig).toEqual(values().meshConfig);
  });

  it('the provider points at the Portcullis Service of deploy/istio, fails closed with 503 within a short deadline', () => {
    const [provider] = values().meshConfig.extensionProviders;
    const svc = find(portcullis, 'Service', 'portcullis');
    expect(provider.envoyExtAuthzGrpc).toEqual({
      service: `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`,
      port: grpcPort(portcullis),
      timeout: '0.25s',
      failOpen: false,
      statusOnError: '503',
    });
  });

  it('reuses the Kubernetes base in namespace portcullis: a ClusterIP Service with gRPC declared for Istio, the rest unchanged', () => {
    for (const o of base) {
      if (o.kind === 'NetworkPolicy' || o.kind === 'Service') continue;
      expect(withoutNamespace(find(portcullis, o.kind, o.metadata.name)), `${o.kind}/${o.metadata.name}`).toEqual(o);
    }
    expect(new Set(portcullis.map((o) => o.metadata.namespace))).toEqual(new Set(['portcullis']));
    const svc = find(portcullis, 'Service', 'portcullis');
    expect(svc.spec.clusterIP).toBeUndefined(); // Istio cannot send Checks to a headless Service
    const baseSvc = find(base, 'Service', 'portcullis');
    expect(svc.spec.ports).toEqual(
      baseSvc.spec.ports.map((p: Json) => (p.name === 'grpc' ? { ...p, appProtocol: 'grpc' } : p)),
    );
    expect(svc.spec.selector).toEqual(baseSvc.spec.selector);
  });

  describe.each([
    ['sidecar', () => sidecar],
    ['ambient', () => ambient],
  ])('%s', (mode, build) => {
    const policy = () => find(build(), 'AuthorizationPolicy', 'portcullis');

    it('a CUSTOM AuthorizationPolicy names the mesh config provider and matches every request', () => {
      expect(policy().spec.action).toBe('CUSTOM');
      expect(values().meshConfig.extensionProviders.map((p: Json) => p.name)).toContain(policy().spec.provider.name);
      expect(policy().spec.rules).toEqual([{}]);
    });

    it('protects the application, in the namespace whose callers the Portcullis NetworkPolicy admits; never Portcullis itself', () => {
      const objs = build();
      const ns = find(objs, 'Namespace', 'demo');
      for (const o of objs.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe(ns.metadata.name);
      const app = find(objs, 'Deployment', 'app');
      if (mode === 'sidecar') {
        expect(ns.metadata.labels['istio-injection']).toBe('enabled');
        const selector = policy().spec.selector.matchLabels;
        expect(matches(selector, app.spec.template.metadata.labels)).toBe(true);
        expect(matches(selector, find(portcullis, 'Deployment', 'portcullis').spec.template.metadata.labels)).toBe(
          false,
        );
      } else {
        // Attached to the waypoint through the Service (a selector would target ztunnel).
        expect(policy().spec.selector).toBeUndefined();
        expect(policy().spec.targetRefs).toEqual([{ kind: 'Service', group: '', name: 'app' }]);
        expect(matches(find(objs, 'Service', 'app').spec.selector, app.spec.template.metadata.labels)).toBe(true);
        const waypoint = find(objs, 'Gateway', ns.metadata.labels['istio.io/use-waypoint']);
        expect(ns.metadata.labels['istio.io/dataplane-mode']).toBe('ambient');
        expect(waypoint.spec.gatewayClassName).toBe('istio-waypoint');
        expect(waypoint.spec.listeners).toEqual([{ name: 'mesh', port: 15008, protocol: 'HBONE' }]);
      }
      const grpc = grpcPort(portcullis);
      const rules = find(portcullis, 'NetworkPolicy', 'portcullis').spec.ingress.filter((r: Json) =>
        r.ports.some((p: Json) => p.port === grpc),
      );
      expect(rules).toEqual([
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.metadata.name } } }],
          ports: [{ port: grpc, protocol: 'TCP' }],
        },
      ]);
    });
  });
});

describe('the control-plane validators catch mistakes', () => {
  const policies = () => all(kustomizeBuild(EG), 'SecurityPolicy');
  const reads = () => structuredClone(policies().find((p) => p.metadata.name === 'orders-read')!);

  it('SecurityPolicy: a misspelled field, a status Envoy Gateway refuses, a context extension without its value, grpc and http together', () => {
    const p = reads();
    p.spec.extAuth.failopen = p.spec.extAuth.failOpen;
    p.spec.extAuth.statusOnError = 200;
    p.spec.extAuth.contextExtensions[0] = { name: 'portcullis.route', type: 'Value' };
    p.spec.extAuth.grpc.backendRefs[0].prot = 9191;
    const found = problems(securityPolicy, p).join('\n');
    expect(found).toMatch(/spec\.extAuth: Unrecognized key: "failopen"/);
    expect(found).toMatch(/spec\.extAuth\.statusOnError: Too small/);
    expect(found).toMatch(/contextExtensions\.0: type Value takes value/);
    expect(found).toMatch(/backendRefs\.0: Unrecognized key: "prot"/);
    const both = reads();
    both.spec.extAuth.http = { backendRefs: [{ name: 'x', port: 80 }] };
    expect(problems(securityPolicy, both)).toContainEqual('spec.extAuth: exactly one of grpc or http');
    const duration = reads();
    duration.spec.extAuth.timeout = '0.25s';
    expect(problems(securityPolicy, duration).join()).toMatch(/timeout: a Gateway API Duration/);
  });

  it('routes: an HTTPRoute pinning orders-read for every method, and a policy pinning a route Portcullis does not have', () => {
    // orders-read without its method matches, and no orders-write route: POSTs land on orders-read.
    const objs = kustomizeBuild(EG).filter((o) => !(o.kind === 'HTTPRoute' && o.metadata.name === 'orders-write'));
    const config = portcullisConfig(objs);
    find(objs, 'HTTPRoute', 'orders-read').spec.rules[0].matches = [
      { path: { type: 'PathPrefix', value: '/v1/orders' } },
    ];
    expect(disagreements(gatewayRoutes(objs, 'api'), config)).toContain(
      'Envoy route orders-read: pins "orders-read" but Portcullis matches POST /v1/orders to "orders-write"',
    );
    const typo = kustomizeBuild(EG);
    find(typo, 'SecurityPolicy', 'reports').spec.extAuth.contextExtensions[0].value = 'report';
    expect(disagreements(gatewayRoutes(typo, 'api'), config)).toContain(
      'Envoy route reports: portcullis.route "report" is not a route in the Portcullis config',
    );
    // A route no policy covers is ext_authz-off, which Portcullis only accepts for its public paths.
    const uncovered = kustomizeBuild(EG).filter(
      (o) => !(o.kind === 'SecurityPolicy' && ['portcullis', 'reports'].includes(o.metadata.name)),
    );
    expect(disagreements(gatewayRoutes(uncovered, 'api'), config)).toContain(
      'Envoy route reports: ext_authz is disabled but Portcullis treats GET /v1/reports as protected route "reports"',
    );
  });

  it('mesh config: a field of the HTTP provider on the gRPC one, a numeric statusOnError, a Duration Istio cannot read', () => {
    const provider = structuredClone(readYaml(`${ISTIO}/istiod-values.yaml`).meshConfig.extensionProviders[0]);
    provider.envoyExtAuthzGrpc.includeRequestHeadersInCheck = ['authorization'];
    provider.envoyExtAuthzGrpc.statusOnError = 503;
    provider.envoyExtAuthzGrpc.timeout = '250ms';
    const found = problems(extensionProvider, provider).join('\n');
    expect(found).toMatch(/envoyExtAuthzGrpc: Unrecognized key: "includeRequestHeadersInCheck"/);
    expect(found).toMatch(/envoyExtAuthzGrpc\.statusOnError: Invalid input: expected string/);
    expect(found).toMatch(/envoyExtAuthzGrpc\.timeout: a protobuf Duration/);
  });

  it('Istio and Gateway API models: a wrong action, a misspelled targetRefs field, an unknown HTTP method', async () => {
    const ap = structuredClone(find(kustomizeBuild(`${ISTIO}/ambient`), 'AuthorizationPolicy', 'portcullis'));
    ap.spec.action = 'CUSTOMISE';
    ap.spec.targetRefs[0].nmae = ap.spec.targetRefs[0].name;
    delete ap.spec.targetRefs[0].name;
    expect((await schemaErrors([ap])).join()).toMatch(/action must be equal to one of the allowed values/);
    expect(typeErrors([ap]).join('\n')).toMatch(/'"nmae"' does not exist in type '{ group\?: string/);
    const hr = structuredClone(find(kustomizeBuild(EG), 'HTTPRoute', 'orders-read'));
    hr.spec.rules[0].matches[0].method = 'get';
    expect((await schemaErrors([hr])).join()).toMatch(/method must be equal to one of the allowed values/);
  });
});

// ---- kubectl kustomize ------------------------------------------------------------------------

// KUBECTL names another kubectl binary (or a missing one, to see the skip).
const KUBECTL_BIN = process.env.KUBECTL ?? 'kubectl';
const KUBECTL = spawnSync(KUBECTL_BIN, ['version', '--client'], { encoding: 'utf8' }).status === 0;
const OVERLAYS = [
  'deploy/kubernetes/base',
  'deploy/kubernetes/overlays/sidecar',
  'deploy/envoy-gateway',
  'deploy/istio',
  'deploy/istio/sidecar',
  'deploy/istio/ambient',
];
// kustomize wraps long base64 Secret values over lines; the API server reads them either way.
const unwrapped = (o: K8sObject) =>
  o.kind === 'Secret'
    ? {
        ...o,
        data: Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, String(v).replace(/\s/g, '')])),
      }
    : o;
const keyed = (objs: K8sObject[]) =>
  new Map(objs.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, unwrapped(o)]));

if (!KUBECTL)
  console.warn(
    `control-planes.test.ts: ${KUBECTL_BIN} not found; the \`kubectl kustomize\` checks are SKIPPED (the test's kustomize subset still builds every overlay)`,
  );

describe(
  KUBECTL
    ? 'kubectl kustomize renders every overlay as the test kustomize does'
    : `kubectl kustomize: SKIPPED, ${KUBECTL_BIN} not found`,
  () => {
    it.skipIf(!KUBECTL).each(OVERLAYS)('%s', (dir) => {
      const rendered = parseAllDocuments(
        execFileSync(KUBECTL_BIN, ['kustomize', `${REPO}${dir}`], { encoding: 'utf8' }),
      ).map((d) => d.toJS() as K8sObject);
      const own = kustomizeBuild(`${REPO}${dir}`);
      expect([...keyed(rendered).keys()].sort()).toEqual([...keyed(own).keys()].sort());
      for (const [k, o] of keyed(own)) expect(keyed(rendered).get(k), k).toEqual(o);
    });
  },
);
