// Validates Kubernetes objects with the kubernetes-models package (schemas generated from the
// Kubernetes OpenAPI spec; CRDs from @kubernetes-models/prometheus-operator, /gateway-api (Gateway
// API v1.0 standard channel) and /istio):
//   1. the package's JSON-schema validators (types, formats, required fields, enums), and
//   2. its TypeScript interfaces, with TypeScript's excess-property check, because the schemas allow
//      unknown properties and a typo (`readinesProbe`) would otherwise pass.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import type { K8sObject } from './kustomize.ts';
import { REPO } from './envoy-config.ts';

interface ModelRef {
  module: string;
  name: string;
  /** A TypeScript type intersected with the model's, for fields newer than the model. */
  extend?: string;
}

// @kubernetes-models/istio 2.x (the last release for Node 20) predates AuthorizationPolicy's
// targetRefs (Istio 1.22+), which attaches a policy to a waypoint; its schema lets the field through
// and this type checks it, from Istio's PolicyTargetReference:
// https://istio.io/latest/docs/reference/config/type/workload-selector/#PolicyTargetReference
const ISTIO_TARGET_REFS =
  '{ spec?: { targetRefs?: Array<{ group?: string; kind: string; name: string; namespace?: string }> } }';

const MODELS: Record<string, ModelRef> = {
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', name: 'ServiceAccount' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'Service' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', name: 'ConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'Secret' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'Deployment' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    name: 'HorizontalPodAutoscaler',
  },
  'policy/v1/PodDisruptionBudget': {
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    name: 'PodDisruptionBudget',
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
    name: 'NetworkPolicy',
  },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
    name: 'ServiceMonitor',
  },
  'v1/Namespace': { module: 'kubernetes-models/v1/Namespace', name: 'Namespace' },
  'gateway.networking.k8s.io/v1/Gateway': {
    module: '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway',
    name: 'Gateway',
  },
  'gateway.networking.k8s.io/v1/HTTPRoute': {
    module: '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute',
    name: 'HTTPRoute',
  },
  'security.istio.io/v1/AuthorizationPolicy': {
    module: '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy',
    name: 'AuthorizationPolicy',
    extend: ISTIO_TARGET_REFS,
  },
  'install.istio.io/v1alpha1/IstioOperator': {
    module: '@kubernetes-models/istio/install.istio.io/v1alpha1/IstioOperator',
    name: 'IstioOperator',
  },
};

/** Whether kubernetes-models has a schema for this object's apiVersion and kind. */
export const hasModel = (o: K8sObject): boolean => MODELS[`${o.apiVersion}/${o.kind}`] !== undefined;

const modelOf = (o: K8sObject): ModelRef => {
  const m = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!m) throw new Error(`no schema known for ${o.apiVersion} ${o.kind}`);
  return m;
};

/** Schema validation through the model classes; returns "Kind/name: message" per failure. */
export async function schemaErrors(objects: K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const o of objects) {
    const ref = modelOf(o);
    const mod = (await import(ref.module)) as Record<string, new (d: unknown) => { validate(): void }>;
    try {
      new mod[ref.name](o).validate();
    } catch (e) {
      errors.push(`${o.kind}/${o.metadata?.name}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** TypeScript check of each object against the model's interface (unknown fields, wrong types). */
export function typeErrors(objects: K8sObject[]): string[] {
  const dir = join(REPO, '.tmp');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `k8s-typecheck-${process.pid}-${Date.now()}.ts`);
  const lines: string[] = [];
  const owner: string[] = []; // line index -> object label
  objects.forEach((o, i) => {
    const ref = modelOf(o);
    lines.push(`import type { I${ref.name} as M${i} } from '${ref.module}';`);
    lines.push(`type T${i} = M${i}${ref.extend ? ` & ${ref.extend}` : ''};`);
    owner.push('', '');
  });
  objects.forEach((o, i) => {
    for (const l of `export const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`.split('\n')) {
      lines.push(l);
      owner.push(`${o.kind}/${o.metadata?.name}`);
    }
  });
  writeFileSync(file, lines.join('\n'));
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022,
      types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      if (!d.file || d.start === undefined) return msg;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${owner[line] || 'imports'}: ${d.file.text.split('\n')[line].trim()} -> ${msg}`;
    });
  } finally {
    rmSync(file, { force: true });
  }
}
