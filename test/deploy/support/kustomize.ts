// A small, strict subset of `kustomize build`, so that the deploy tests run where no kubectl or
// kustomize binary is installed: resources, labels, generators, images, namespace and
// strategic-merge patches, the features deploy/ uses. Any kustomization field it does not
// implement is an error, so the tests cannot silently skip one. Where kubectl is installed,
// test/deploy/control-planes.test.ts checks that `kubectl kustomize` renders the same objects.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = Record<string, any>;

/** Cluster-scoped kinds deploy/ uses (kustomize knows these from the Kubernetes API). */
const CLUSTER_SCOPED = new Set(['Namespace']);

const SUPPORTED = new Set([
  'apiVersion',
  'kind',
  'resources',
  'labels',
  'generatorOptions',
  'configMapGenerator',
  'secretGenerator',
  'images',
  'patches',
  'namespace',
]);

function readYamlDocs(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

const isObject = (v: unknown): v is K8sObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merge keys of the lists kustomize merges item by item (everything else is replaced). */
function mergeKey(field: string, kind: string): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'volumes':
    case 'env':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'ports':
      return kind === 'Service' ? 'port+protocol' : 'containerPort';
    default:
      return undefined;
  }
}

/** Kubernetes strategic merge patch: maps merge, null deletes, keyed lists merge by key, `$patch: delete`. */
export function strategicMerge(base: unknown, patch: unknown, kind: string, field = ''): unknown {
  if (!isObject(patch)) return patch;
  if (!isObject(base)) base = {};
  const out: K8sObject = { ...(base as K8sObject) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete out[k];
      continue;
    }
    const key = mergeKey(k, kind);
    if (Array.isArray(v) && key && Array.isArray(out[k])) {
      // Service ports merge on port and protocol together; a patch item without protocol matches
      // nothing in kustomize (a `$patch: delete` is then silently ignored), so it is an error here.
      const fields = key.split('+');
      const id = (x: K8sObject) => fields.map((f) => x[f]).join('/');
      const list: K8sObject[] = [...out[k]];
      const added: K8sObject[] = [];
      for (const item of v as K8sObject[]) {
        for (const f of fields)
          if (item[f] === undefined)
            throw new Error(
              `patch item of ${kind} ${k} has no ${f}: kustomize merges these items on ${fields.join(' and ')}`,
            );
        const i = list.findIndex((x) => id(x) === id(item));
        if (item.$patch === 'delete') {
          if (i < 0) throw new Error(`patch deletes ${k} item ${fields.join('/')}=${id(item)}, which does not exist`);
          list.splice(i, 1);
        } else if (i >= 0) list[i] = strategicMerge(list[i], item, kind, k) as K8sObject;
        else added.push(item);
      }
      // As kustomize does, items the patch adds come first, in the patch's order.
      out[k] = [...added, ...list];
    } else {
      out[k] = isObject(v) ? strategicMerge(out[k], v, kind, k) : v;
    }
  }
  void field;
  return out;
}

function generated(kind: 'ConfigMap' | 'Secret', gen: K8sObject, dir: string, disableHash: boolean): K8sObject {
  const data: Record<string, string> = {};
  for (const f of gen.files ?? []) {
    const [key, path] = String(f).includes('=') ? String(f).split('=', 2) : [basename(String(f)), String(f)];
    const abs = resolve(dir, path);
    if (!abs.startsWith(resolve(dir)))
      throw new Error(`${dir}: generator file ${f} is outside the kustomization root (kustomize refuses it)`);
    data[key] = readFileSync(abs, 'utf8');
  }
  for (const l of gen.literals ?? []) {
    const i = String(l).indexOf('=');
    data[String(l).slice(0, i)] = String(l).slice(i + 1);
  }
  for (const k of Object.keys(gen))
    if (!['name', 'files', 'literals', 'behavior', 'type'].includes(k))
      throw new Error(`unsupported generator field ${k}`);
  const body =
    kind === 'Secret'
      ? { data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) }
      : { data };
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 10);
  return {
    apiVersion: 'v1',
    kind,
    metadata: { name: disableHash ? gen.name : `${gen.name}-${hash}` },
    ...(kind === 'Secret' ? { type: gen.type ?? 'Opaque' } : {}),
    ...body,
  };
}

/** Builds a kustomization directory into its list of objects. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const kfile = join(dir, 'kustomization.yaml');
  const [k] = readYamlDocs(kfile);
  for (const key of Object.keys(k))
    if (!SUPPORTED.has(key)) throw new Error(`${kfile}: field "${key}" is not supported by the test's kustomize`);
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization')
    throw new Error(`${kfile}: not a v1beta1 Kustomization`);

  let objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${kfile}: resource ${r} does not exist`);
    objects.push(...(statSync(p).isDirectory() ? kustomizeBuild(p) : readYamlDocs(p)));
  }

  const disableHash = k.generatorOptions?.disableNameSuffixHash === true;
  if (!disableHash && (k.configMapGenerator?.length || k.secretGenerator?.length)) {
    // Hashed names need kustomize's name-reference rewriting, which this subset does not do.
    throw new Error(`${kfile}: generators need generatorOptions.disableNameSuffixHash: true here`);
  }
  for (const [kind, gens] of [
    ['ConfigMap', k.configMapGenerator ?? []],
    ['Secret', k.secretGenerator ?? []],
  ] as const) {
    for (const gen of gens as K8sObject[]) {
      const obj = generated(kind, gen, dir, disableHash);
      const i = objects.findIndex((o) => o.kind === kind && o.metadata?.name === gen.name);
      const behavior = gen.behavior ?? 'create';
      if (behavior === 'create') {
        if (i >= 0) throw new Error(`${kfile}: ${kind} ${gen.name} already exists (use behavior: replace or merge)`);
        objects.push(obj);
      } else if (behavior === 'replace' || behavior === 'merge') {
        if (i < 0) throw new Error(`${kfile}: ${kind} ${gen.name} to ${behavior} does not exist`);
        // Either way the existing object keeps its metadata (labels included), as in kustomize.
        objects[i] =
          behavior === 'replace'
            ? { ...obj, metadata: objects[i].metadata }
            : { ...objects[i], data: { ...objects[i].data, ...obj.data } };
      } else throw new Error(`${kfile}: unknown generator behavior ${behavior}`);
    }
  }

  for (const p of k.patches ?? []) {
    if (!p.path || p.target || p.patch) throw new Error(`${kfile}: only file patches ({path}) are supported`);
    for (const patch of readYamlDocs(resolve(dir, p.path))) {
      const i = objects.findIndex((o) => o.kind === patch.kind && o.metadata?.name === patch.metadata?.name);
      if (i < 0)
        throw new Error(
          `${kfile}: patch ${p.path} targets ${patch.kind}/${patch.metadata?.name}, which no resource defines`,
        );
      objects[i] = strategicMerge(objects[i], patch, patch.kind) as K8sObject;
    }
  }

  for (const img of k.images ?? []) {
    for (const o of objects) {
      for (const c of [
        ...(o.spec?.template?.spec?.containers ?? []),
        ...(o.spec?.template?.spec?.initContainers ?? []),
      ]) {
        const name = String(c.image).split(':')[0];
        if (name === img.name) c.image = `${img.newName ?? img.name}:${img.newTag ?? 'latest'}`;
      }
    }
  }

  for (const l of k.labels ?? []) {
    if (l.includeSelectors || l.includeTemplates)
      throw new Error(`${kfile}: labels with includeSelectors/includeTemplates are not supported`);
    objects = objects.map((o) => ({
      ...o,
      metadata: { ...o.metadata, labels: { ...o.metadata?.labels, ...l.pairs } },
    }));
  }
  // Like kustomize, leave cluster-scoped objects without a namespace.
  if (k.namespace)
    objects = objects.map((o) =>
      CLUSTER_SCOPED.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace: k.namespace } },
    );
  return objects;
}
