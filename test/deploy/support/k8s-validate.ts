// Validates Kubernetes objects with the kubernetes-models package (schemas generated from the
// Kubernetes OpenAPI spec; prometheus-operator CRDs from @kubernetes-models/prometheus-operator):
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
}

const MODELS: Record<string, ModelRef> = {
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', name: 'ServiceAccount' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'Service' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', name: 'ConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'Secret' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'Deployment' },
  'autoscaling/v2/HorizontalPodAutoscaler': { module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', name: 'HorizontalPodAutoscaler' },
  'policy/v1/PodDisruptionBudget': { module: 'kubernetes-models/policy/v1/PodDisruptionBudget', name: 'PodDisruptionBudget' },
  'networking.k8s.io/v1/NetworkPolicy': { module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', name: 'NetworkPolicy' },
  'monitoring.coreos.com/v1/ServiceMonitor': { module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1', name: 'ServiceMonitor' },
};

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
    lines.push(`import type { I${ref.name} as T${i} } from '${ref.module}';`);
    owner.push('');
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
