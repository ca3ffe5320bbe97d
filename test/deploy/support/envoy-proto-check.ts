// Checks an Envoy YAML/JSON config against Envoy's own API protos (the v1.31 API shipped by
// @grpc/grpc-js-xds under deps/), the way Envoy's loader would: every field must exist on its
// message, enums must name a value, every `typed_config` / Any `@type` must resolve to a real message
// (its proto is loaded on demand, recursively), and protoc-gen-validate rules that Envoy enforces at
// startup (required messages and oneofs, min lengths and counts, numeric bounds, const) must hold.
// Deprecated fields are reported too: Envoy warns on them and a new config should not use them.
// No Envoy binary runs here, so this is the closest check available; it does not resolve DNS or bind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const XDS_ROOT = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const PROTO_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_ROOT, 'deps', d));
// protoc-gen-validate imports google/protobuf/descriptor.proto, which protobufjs ships as JSON.
protobuf.common(
  'descriptor',
  require('protobufjs/google/protobuf/descriptor.json').nested.google.nested.protobuf.nested,
);

let root: protobuf.Root | undefined;
const loadedDirs = new Set<string>();

function getRoot(): protobuf.Root {
  if (root) return root;
  root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const d of PROTO_DIRS) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync('envoy/config/bootstrap/v3/bootstrap.proto', { keepCase: true });
  root.resolveAll();
  return root;
}

const resolvable = new Map<string, boolean>();

/** Whether every file `file` imports, transitively, is in PROTO_DIRS (or is one protobufjs ships). */
function importsResolve(file: string): boolean {
  const known = resolvable.get(file);
  if (known !== undefined) return known;
  resolvable.set(file, true); // an import cycle resolves if the rest does
  let ok = true;
  for (const m of readFileSync(file, 'utf8').matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) {
    if (m[1].startsWith('google/protobuf/')) continue;
    const found = PROTO_DIRS.map((d) => join(d, m[1])).find((p) => existsSync(p));
    if (!found || !importsResolve(found)) {
      ok = false;
      break;
    }
  }
  resolvable.set(file, ok);
  return ok;
}

/** Finds a message type by full name, loading the protos of its package directory if needed. */
function lookupType(fullName: string): protobuf.Type | undefined {
  const r = getRoot();
  const find = () => {
    try {
      return r.lookupType(fullName);
    } catch {
      return undefined;
    }
  };
  let t = find();
  if (t) return t;
  const parts = fullName.split('.');
  // Drop trailing components (the message, then any enclosing messages) until a package dir exists.
  for (let n = parts.length - 1; n > 0 && !t; n--) {
    const rel = parts.slice(0, n).join('/');
    for (const d of PROTO_DIRS) {
      const dir = join(d, rel);
      if (loadedDirs.has(dir) || !existsSync(dir)) continue;
      loadedDirs.add(dir);
      // A proto whose imports the vendored API lacks (envoy/config/trace/v3/opencensus.proto needs
      // the OpenCensus protos) is left out: its types cannot be checked, the rest of the package can.
      const files = readdirSync(dir).filter((f) => f.endsWith('.proto') && importsResolve(join(dir, f)));
      if (files.length === 0) continue;
      r.loadSync(
        files.map((f) => join(rel, f)),
        { keepCase: true },
      );
      r.resolveAll();
      t = find();
    }
  }
  return t;
}

const TYPE_URL_PREFIX = 'type.googleapis.com/';

type Rules = Record<string, Record<string, unknown>>;

/** PGV rules of a field, merged from protobufjs' parsedOptions: `{ message: {required: true}, ... }`. */
function pgvRules(field: protobuf.Field): Rules {
  const out: Rules = {};
  for (const o of (field.parsedOptions as unknown as Record<string, unknown>[] | null) ?? []) {
    const v = o['(validate.rules)'] as Rules | undefined;
    if (!v) continue;
    for (const [k, r] of Object.entries(v)) out[k] = { ...(out[k] ?? {}), ...(r as object) };
  }
  return out;
}

function isDeprecated(field: protobuf.Field): boolean {
  const o = field.options ?? {};
  return o.deprecated === true || o['(envoy.annotations.deprecated_at_minor_version)'] !== undefined;
}

const INT_TYPES = new Set([
  'int32',
  'uint32',
  'sint32',
  'fixed32',
  'sfixed32',
  'int64',
  'uint64',
  'sint64',
  'fixed64',
  'sfixed64',
]);
const WRAPPERS: Record<string, string> = {
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Duration as proto3 JSON writes it: "1s", "0.25s". Returns seconds, or undefined when malformed. */
function durationSeconds(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(-?\d+(?:\.\d{1,9})?)s$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

function durationBound(rule: unknown): number | undefined {
  if (!isObject(rule)) return undefined;
  return Number(rule.seconds ?? 0) + Number(rule.nanos ?? 0) / 1e9;
}

export class EnvoyConfigChecker {
  readonly errors: string[] = [];
  /** Every `@type` that resolved, for tests that want to see which extensions a config uses. */
  readonly typesSeen = new Set<string>();

  private err(path: string, msg: string): void {
    this.errors.push(`${path || '<root>'}: ${msg}`);
  }

  checkBootstrap(config: unknown): string[] {
    this.checkMessage(config, lookupType('envoy.config.bootstrap.v3.Bootstrap')!, '');
    return this.errors;
  }

  checkMessage(value: unknown, type: protobuf.Type, path: string): void {
    const name = type.fullName.replace(/^\./, '');
    if (this.checkWellKnown(value, name, path)) return;
    if (!isObject(value)) return this.err(path, `expected an object for ${name}, got ${JSON.stringify(value)}`);
    const byJsonName = new Map<string, protobuf.Field>();
    for (const f of type.fieldsArray) byJsonName.set(f.name, f).set(camel(f.name), f);
    const present = new Set<string>();
    for (const [key, v] of Object.entries(value)) {
      const field = byJsonName.get(key);
      const p = path ? `${path}.${key}` : key;
      if (!field) {
        this.err(p, `unknown field "${key}" in ${name}${suggest(key, type)}`);
        continue;
      }
      if (present.has(field.name)) this.err(p, `field "${field.name}" given twice (snake_case and camelCase)`);
      present.add(field.name);
      if (isDeprecated(field)) this.err(p, `field "${field.name}" of ${name} is deprecated`);
      this.checkField(v, field, p);
    }
    for (const f of type.fieldsArray) {
      // In a oneof, PGV applies a member's rules only when that member is the one set.
      if (f.partOf) continue;
      const rules = pgvRules(f);
      const required =
        rules.message?.required === true ||
        rules.duration?.required === true ||
        rules.any?.required === true ||
        rules.timestamp?.required === true;
      if (required && !present.has(f.name))
        this.err(path ? `${path}.${f.name}` : f.name, `required field "${f.name}" of ${name} is missing`);
    }
    for (const oneof of type.oneofsArray) {
      const set = oneof.oneof.filter((n) => present.has(n));
      if (set.length > 1) this.err(path, `oneof "${oneof.name}" of ${name} has several fields set: ${set.join(', ')}`);
      const required = oneof.options?.['(validate.required)'] === true;
      if (required && set.length === 0)
        this.err(path, `oneof "${oneof.name}" of ${name} requires one of: ${oneof.oneof.join(', ')}`);
    }
  }

  private checkField(v: unknown, field: protobuf.Field, path: string): void {
    const rules = pgvRules(field);
    if (field.map) {
      if (!isObject(v)) return this.err(path, `expected a map`);
      for (const [k, mv] of Object.entries(v)) this.checkSingle(mv, field, `${path}[${k}]`, rules);
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) return this.err(path, `expected a list`);
      const min = Number(rules.repeated?.min_items ?? 0);
      if (v.length < min) this.err(path, `needs at least ${min} item(s)`);
      const itemRules = (rules.repeated?.items as Rules | undefined) ?? {};
      v.forEach((item, i) => this.checkSingle(item, field, `${path}[${i}]`, itemRules));
      return;
    }
    this.checkSingle(v, field, path, rules);
  }

  private checkSingle(v: unknown, field: protobuf.Field, path: string, rules: Rules): void {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      const ok = typeof v === 'string' ? v in rt.values : typeof v === 'number' && Object.values(rt.values).includes(v);
      if (!ok)
        this.err(
          path,
          `"${String(v)}" is not a value of enum ${rt.fullName.slice(1)} (${Object.keys(rt.values).join(', ')})`,
        );
      return;
    }
    if (rt instanceof protobuf.Type) {
      const name = rt.fullName.slice(1);
      if (name === 'google.protobuf.Duration') {
        const s = durationSeconds(v);
        if (s === undefined)
          return this.err(path, `expected a duration like "1s" or "0.25s", got ${JSON.stringify(v)}`);
        const d = rules.duration ?? {};
        const gt = durationBound(d.gt),
          gte = durationBound(d.gte),
          lt = durationBound(d.lt),
          lte = durationBound(d.lte);
        if (gt !== undefined && !(s > gt)) this.err(path, `must be > ${gt}s`);
        if (gte !== undefined && !(s >= gte)) this.err(path, `must be >= ${gte}s`);
        if (lt !== undefined && !(s < lt)) this.err(path, `must be < ${lt}s`);
        if (lte !== undefined && !(s <= lte)) this.err(path, `must be <= ${lte}s`);
        return;
      }
      if (WRAPPERS[name]) return this.checkScalar(v, WRAPPERS[name], path, rules);
      return this.checkMessage(v, rt, path);
    }
    this.checkScalar(v, field.type, path, rules);
  }

  private checkScalar(v: unknown, type: string, path: string, rules: Rules): void {
    if (type === 'string') {
      if (typeof v !== 'string') return this.err(path, `expected a string, got ${JSON.stringify(v)}`);
      const s = rules.string ?? {};
      if (s.min_len !== undefined && v.length < Number(s.min_len))
        this.err(path, `must be at least ${s.min_len} character(s)`);
      if (s.min_bytes !== undefined && Buffer.byteLength(v) < Number(s.min_bytes))
        this.err(path, `must be at least ${s.min_bytes} byte(s)`);
      if (s.max_bytes !== undefined && Buffer.byteLength(v) > Number(s.max_bytes))
        this.err(path, `must be at most ${s.max_bytes} byte(s)`);
      if (Array.isArray(s.in) && !s.in.includes(v)) this.err(path, `must be one of ${s.in.join(', ')}`);
      return;
    }
    if (type === 'bool') {
      if (typeof v !== 'boolean') return this.err(path, `expected true or false, got ${JSON.stringify(v)}`);
      if (rules.bool?.const !== undefined && v !== rules.bool.const) this.err(path, `must be ${rules.bool.const}`);
      return;
    }
    if (type === 'bytes') {
      if (typeof v !== 'string') this.err(path, 'expected base64 bytes');
      return;
    }
    const n = typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n))
      return this.err(path, `expected a number, got ${JSON.stringify(v)}`);
    if (INT_TYPES.has(type) && !Number.isInteger(n)) return this.err(path, `expected an integer, got ${n}`);
    if (type.startsWith('uint') && n < 0) return this.err(path, `expected a non-negative integer, got ${n}`);
    const r = rules[type] ?? {};
    if (r.gt !== undefined && !(n > Number(r.gt))) this.err(path, `must be > ${r.gt}`);
    if (r.gte !== undefined && !(n >= Number(r.gte))) this.err(path, `must be >= ${r.gte}`);
    if (r.lt !== undefined && !(n < Number(r.lt))) this.err(path, `must be < ${r.lt}`);
    if (r.lte !== undefined && !(n <= Number(r.lte))) this.err(path, `must be <= ${r.lte}`);
  }

  /** Well-known types with a special JSON form. Returns true when `name` was one of them. */
  private checkWellKnown(v: unknown, name: string, path: string): boolean {
    switch (name) {
      case 'google.protobuf.Any': {
        if (!isObject(v)) {
          this.err(path, 'expected an object with "@type"');
          return true;
        }
        const url = v['@type'];
        if (typeof url !== 'string' || !url.startsWith(TYPE_URL_PREFIX)) {
          this.err(path, `"@type" must be "${TYPE_URL_PREFIX}<message>", got ${JSON.stringify(url)}`);
          return true;
        }
        const typeName = url.slice(TYPE_URL_PREFIX.length);
        const t = lookupType(typeName);
        if (!t) {
          this.err(path, `unknown type "${typeName}" in "@type"`);
          return true;
        }
        this.typesSeen.add(typeName);
        const { ['@type']: _drop, ...rest } = v;
        const special = [
          'google.protobuf.Struct',
          'google.protobuf.Value',
          'google.protobuf.Duration',
          'google.protobuf.Timestamp',
        ];
        if (special.includes(typeName) || WRAPPERS[typeName])
          this.checkWellKnown(rest.value, typeName, `${path}.value`);
        else this.checkMessage(rest, t, path);
        return true;
      }
      case 'google.protobuf.Struct':
        if (!isObject(v)) this.err(path, 'expected an object (google.protobuf.Struct)');
        return true;
      case 'google.protobuf.Value':
        return true;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(v)) this.err(path, 'expected a list');
        return true;
      case 'google.protobuf.Empty':
        if (!isObject(v) || Object.keys(v).length) this.err(path, 'expected {}');
        return true;
      case 'google.protobuf.Timestamp':
        if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) this.err(path, 'expected an RFC 3339 timestamp');
        return true;
      case 'google.protobuf.Duration':
        if (durationSeconds(v) === undefined) this.err(path, `expected a duration like "1s", got ${JSON.stringify(v)}`);
        return true;
      default:
        if (WRAPPERS[name]) {
          this.checkScalar(v, WRAPPERS[name], path, {});
          return true;
        }
        return false;
    }
  }
}

function camel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function suggest(key: string, type: protobuf.Type): string {
  const names = type.fieldsArray.map((f) => f.name);
  const close = names.filter((n) => distance(n, key) <= 2);
  return close.length ? ` (did you mean ${close.join(' or ')}?)` : '';
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Validates a parsed Envoy bootstrap; returns every problem found (empty when clean). */
export function checkEnvoyBootstrap(config: unknown): { errors: string[]; types: Set<string> } {
  const c = new EnvoyConfigChecker();
  c.checkBootstrap(config);
  return { errors: c.errors, types: c.typesSeen };
}
