// deploy/kubernetes: the base and the sidecar overlay, built with the test's kustomize subset and
// validated against the Kubernetes schemas and types of the kubernetes-models package; then the
// properties the deployment guide promises, and the wiring between objects (ports, names, paths).
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/policy/load.ts';
import { REPO, type Json } from './support/envoy-config.ts';
import { schemaErrors, typeErrors } from './support/k8s-validate.ts';
import { kustomizeBuild, strategicMerge, type K8sObject } from './support/kustomize.ts';

const BASE = `${REPO}deploy/kubernetes/base`;
const SIDECAR = `${REPO}deploy/kubernetes/overlays/sidecar`;
const env = { INTROSPECTION_CLIENT_SECRET: 'x' };

const find = (objs: K8sObject[], kind: string, name = 'portcullis') => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o;
};
const container = (d: K8sObject, name: string) => d.spec.template.spec.containers.find((c: Json) => c.name === name);
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each([
  ['base', BASE],
  ['sidecar overlay', SIDECAR],
])('%s', (_label, dir) => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = kustomizeBuild(dir);
  });

  it('every object validates against the Kubernetes schemas', async () => {
    expect(objs.map((o) => o.kind).sort()).toEqual(
      expect.arrayContaining([
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Secret',
        'Service',
        'ServiceAccount',
        'ServiceMonitor',
      ]),
    );
    expect(await schemaErrors(objs)).toEqual([]);
  });

  it('every object type-checks against the Kubernetes API types (no unknown or misspelled field)', () => {
    expect(typeErrors(objs)).toEqual([]);
  });

  it('runs Portcullis hardened: non-root, read-only root, no token, no privilege escalation, resources, anti-affinity', () => {
    const d = find(objs, 'Deployment');
    const pod = d.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(find(objs, 'ServiceAccount').automountServiceAccountToken).toBe(false);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(
      pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey,
    ).toBe('kubernetes.io/hostname');
    for (const c of pod.containers) {
      expect(c.securityContext, c.name).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.resources.requests, c.name).toHaveProperty('cpu');
      expect(c.resources.requests, c.name).toHaveProperty('memory');
      expect(c.resources.limits, c.name).toHaveProperty('memory');
    }
  });

  it('probes /healthz and /readyz on the ops port of the config the container loads', () => {
    const d = find(objs, 'Deployment');
    const c = container(d, 'portcullis');
    const port = (name: string) => c.ports.find((p: Json) => p.name === name).containerPort;
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'ops' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'ops' });
    // The args point at a file the ConfigMap volume provides, and that file is a valid config.
    const configPath = c.args[c.args.indexOf('--config') + 1];
    const mount = c.volumeMounts.find((m: Json) => configPath.startsWith(`${m.mountPath}/`));
    const volume = d.spec.template.spec.volumes.find((v: Json) => v.name === mount.name);
    const cm = find(objs, 'ConfigMap', volume.configMap.name);
    const text = cm.data[posix.basename(configPath)];
    const config = parseConfig(text, configPath, env);
    expect(Number(config.server.http.address.split(':').pop())).toBe(port('ops'));
    expect(Number(config.server.grpc.address.split(':').pop())).toBe(port('grpc'));
    // The API key file resolves (relative to the config file) into the mounted Secret.
    const store = config.credentials.api_key!.store as { type: string; path: string };
    const keysPath = posix.resolve(posix.dirname(configPath), store.path);
    const keysMount = c.volumeMounts.find((m: Json) => keysPath.startsWith(`${m.mountPath}/`));
    const secretName = d.spec.template.spec.volumes.find((v: Json) => v.name === keysMount.name).secret.secretName;
    expect(Object.keys(find(objs, 'Secret', secretName).data)).toContain(posix.basename(keysPath));
    // Enough time to drain: preStop pause + shutdown grace must fit in the termination grace period.
    const pause = Number(c.lifecycle.preStop.exec.command[1]);
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(
      pause + config.server.shutdown_grace_seconds,
    );
    // Compiled code writes nothing at run time: every mount is read-only, on a read-only root.
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.volumeMounts.filter((m: Json) => !m.readOnly).map((m: Json) => m.mountPath)).toEqual([]);
  });

  it("selects the Deployment's Pods from the Service, PDB, NetworkPolicy and ServiceMonitor; the HPA scales it", () => {
    const d = find(objs, 'Deployment');
    const labels = d.spec.template.metadata.labels;
    expect(matches(d.spec.selector.matchLabels, labels)).toBe(true);
    const svc = find(objs, 'Service');
    expect(matches(svc.spec.selector, labels)).toBe(true);
    expect(matches(find(objs, 'PodDisruptionBudget').spec.selector.matchLabels, labels)).toBe(true);
    expect(matches(find(objs, 'NetworkPolicy').spec.podSelector.matchLabels, labels)).toBe(true);
    const sm = find(objs, 'ServiceMonitor');
    expect(matches(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    expect(svc.spec.ports.map((p: Json) => p.name)).toContain(sm.spec.endpoints[0].port);
    const hpa = find(objs, 'HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'portcullis' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    // Every Service targetPort names a container port of the Pod.
    const names = d.spec.template.spec.containers.flatMap((c: Json) => (c.ports ?? []).map((p: Json) => p.name));
    for (const p of svc.spec.ports) expect(names).toContain(p.targetPort);
  });

  it('passes Secret references by name, and the optional one stays optional', () => {
    const c = container(find(objs, 'Deployment'), 'portcullis');
    const ref = c.env.find((e: Json) => e.name === 'INTROSPECTION_CLIENT_SECRET').valueFrom.secretKeyRef;
    expect(ref).toEqual({ name: 'portcullis-secrets', key: 'introspection-client-secret', optional: true });
  });
});

describe('base', () => {
  it('a headless Service with the gRPC and ops ports; only Envoy Pods may reach gRPC', () => {
    const objs = kustomizeBuild(BASE);
    const svc = find(objs, 'Service');
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.ports.map((p: Json) => [p.name, p.port])).toEqual([
      ['grpc', 9191],
      ['ops', 9192],
    ]);
    const rules = find(objs, 'NetworkPolicy').spec.ingress as Json[];
    const grpcRules = rules.filter((r) => r.ports.some((p: Json) => p.port === 9191));
    expect(grpcRules).toEqual([
      {
        from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'envoy' } } }],
        ports: [{ port: 9191, protocol: 'TCP' }],
      },
    ]);
    expect(find(objs, 'NetworkPolicy').spec.policyTypes).toEqual(['Ingress']);
  });
});

describe('sidecar overlay', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = kustomizeBuild(SIDECAR);
  });

  it('ships envoy/envoy-sidecar.yaml unchanged', () => {
    const file = readFileSync(`${REPO}envoy/envoy-sidecar.yaml`, 'utf8');
    expect(readFileSync(`${SIDECAR}/envoy.yaml`, 'utf8')).toBe(file);
    expect(find(objs, 'ConfigMap', 'envoy-config').data['envoy.yaml']).toBe(file);
  });

  it('puts Envoy, Portcullis and the app in one Pod, wired over loopback', () => {
    const d = find(objs, 'Deployment');
    // kustomize puts the containers a patch adds before the base's.
    expect(d.spec.template.spec.containers.map((c: Json) => c.name)).toEqual(['envoy', 'app', 'portcullis']);
    const envoy = parse(find(objs, 'ConfigMap', 'envoy-config').data['envoy.yaml']);
    const endpoint = (cluster: string) =>
      envoy.static_resources.clusters.find((c: Json) => c.name === cluster).load_assignment.endpoints[0].lb_endpoints[0]
        .endpoint.address.socket_address;
    const config = parseConfig(find(objs, 'ConfigMap', 'portcullis-config').data['portcullis.yaml'], 'sidecar', env);
    expect(config.server.grpc.address).toBe(`${endpoint('portcullis').address}:${endpoint('portcullis').port_value}`);
    expect(config.server.grpc.address.startsWith('127.0.0.1:')).toBe(true);
    const app = container(d, 'app');
    expect(app.args).toEqual(['--port', String(endpoint('upstream').port_value)]);
    const listener = envoy.static_resources.listeners[0].address.socket_address.port_value;
    expect(container(d, 'envoy').ports).toEqual([{ name: 'http', containerPort: listener, protocol: 'TCP' }]);
    const mount = container(d, 'envoy').volumeMounts[0];
    expect(container(d, 'envoy').args.slice(0, 2)).toEqual(['-c', `${mount.mountPath}/envoy.yaml`]);
  });

  it('exposes only Envoy: no gRPC port on the Service or in the NetworkPolicy', () => {
    const svc = find(objs, 'Service');
    expect(svc.spec.clusterIP).toBeUndefined();
    expect(svc.spec.ports.map((p: Json) => p.port).sort()).toEqual([8080, 9192]);
    const ports = (find(objs, 'NetworkPolicy').spec.ingress as Json[]).flatMap((r) => r.ports.map((p: Json) => p.port));
    expect(ports.sort()).toEqual([8080, 9192]);
  });
});

describe('the validators catch mistakes', () => {
  const deployment = () => structuredClone(find(kustomizeBuild(BASE), 'Deployment'));

  it('a misspelled field (types)', () => {
    const d = deployment();
    const c = d.spec.template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    expect(typeErrors([d]).join('\n')).toMatch(
      /Deployment\/portcullis: .*'"readinesProbe"' does not exist in type 'IContainer'/,
    );
  });

  it('a wrong type and a missing required field (schema)', async () => {
    const d = deployment();
    d.spec.template.spec.containers[0].ports[0].containerPort = 'grpc';
    delete d.spec.selector;
    const errors = (await schemaErrors([d])).join('\n');
    expect(errors).toMatch(/containerPort must be integer/);
    expect(errors).toMatch(/data\/spec must have required property selector/);
  });

  it('strategic merge: keyed lists merge, null deletes, $patch: delete removes, added items go first', () => {
    const merged = strategicMerge(
      {
        spec: {
          clusterIP: 'None',
          ports: [
            { port: 1, protocol: 'TCP', name: 'a' },
            { port: 2, protocol: 'TCP', name: 'b' },
          ],
        },
      },
      {
        spec: {
          clusterIP: null,
          ports: [
            { port: 1, protocol: 'TCP', $patch: 'delete' },
            { port: 2, protocol: 'TCP', name: 'c' },
            { port: 3, protocol: 'TCP' },
          ],
        },
      },
      'Service',
    );
    expect(merged).toEqual({
      spec: {
        ports: [
          { port: 3, protocol: 'TCP' },
          { port: 2, protocol: 'TCP', name: 'c' },
        ],
      },
    });
  });

  it('strategic merge: a Service port patch without protocol is an error (kustomize would ignore it)', () => {
    expect(() =>
      strategicMerge(
        { spec: { ports: [{ port: 1, protocol: 'TCP' }] } },
        { spec: { ports: [{ port: 1, $patch: 'delete' }] } },
        'Service',
      ),
    ).toThrow(/has no protocol: kustomize merges these items on port and protocol/);
  });
});
