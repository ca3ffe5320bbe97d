// The config's JSON Schema and its Markdown reference, both derived from the zod schema, so the
// documentation cannot drift from what the loader accepts.
import { z } from 'zod';
import { configSchema } from './schema.ts';

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  $ref?: string;
};

export function jsonSchema(): JsonSchema & Record<string, unknown> {
  const s = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema &
    Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/portcullis/portcullis/schema/portcullis.schema.json',
    title: 'Portcullis configuration',
    ...s,
  };
}

export function renderJsonSchema(): string {
  return JSON.stringify(jsonSchema(), null, 2) + '\n';
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf)!.map(typeOf).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object')
    return `map of ${typeOf(s.additionalProperties)}`;
  if (Array.isArray(s.type)) return s.type.join(' \\| ');
  return s.type ?? 'any';
}

interface Row {
  types: string[];
  def: string;
  desc: string;
}

const SAFE = 2 ** 53 - 1;

function rows(s: JsonSchema, path: string, out: Map<string, Row>): void {
  const variants = s.anyOf ?? s.oneOf;
  if (variants && variants.some((v) => v.type === 'object')) {
    // Object variants list their options (a string-or-object union such as source_ip_header too).
    variants.filter((v) => v.type === 'object').forEach((v) => rows(v, path, out));
    return;
  }
  const target = s.type === 'array' && s.items?.type === 'object' ? s.items : s;
  const suffix = target === s ? '' : '[]';
  for (const [name, prop] of Object.entries(target.properties ?? {})) {
    const p = `${path}${suffix}${path || suffix ? '.' : ''}${name}`;
    const def =
      prop.default !== undefined
        ? `\`${JSON.stringify(prop.default)}\``
        : target.required?.includes(name)
          ? '**required**'
          : '';
    const limits = [
      prop.minimum !== undefined && Math.abs(prop.minimum) < SAFE ? `≥ ${prop.minimum}` : '',
      prop.maximum !== undefined && Math.abs(prop.maximum) < SAFE ? `≤ ${prop.maximum}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const desc = [prop.description ?? prop.items?.description ?? '', limits].filter(Boolean).join('; ');
    const type = typeOf(prop);
    const row = out.get(p);
    // Variants of a discriminated union (e.g. key store types) share paths: merge their rows.
    if (row) {
      if (!row.types.includes(type)) row.types.push(type);
      if (!row.desc && desc) row.desc = desc;
    } else out.set(p, { types: [type], def, desc });
    const inner = prop.type === 'array' ? prop.items : prop;
    if (inner && (inner.properties || inner.anyOf || inner.oneOf)) rows(prop, p, out);
    // A map whose values may be objects (headers.set: a field name or { from, unsafe, … }): its
    // object's options, under `<name>`.
    const value =
      prop.type === 'object' && typeof prop.additionalProperties === 'object' ? prop.additionalProperties : undefined;
    const object = value?.properties ? value : (value?.anyOf ?? value?.oneOf)?.find((v) => v.type === 'object');
    if (object) rows(object, `${p}.<name>`, out);
  }
}

export function renderConfigReference(): string {
  const out = new Map<string, Row>();
  rows(jsonSchema(), '', out);
  const table = [...out].map(
    ([p, r]) => `| \`${p}\` | ${r.types.join(' \\| ')} | ${r.def} | ${r.desc.replaceAll('|', '\\|')} |`,
  );
  return `# Configuration reference

Generated from the zod schema in \`src/policy/schema.ts\` by \`npm run schema\` (a test fails when this
file or \`schema/portcullis.schema.json\` is stale). Validate a file with \`portcullis config check FILE\`:
it exits 2 and lists every error with its path.

Any string may use \`\${env:NAME}\` to read a secret from the environment (NAME: letters, digits and \`_\`,
not starting with a digit). An unset or empty variable is an error at load time, and so is any other
\`\${\`: a mistyped reference (\`\${ENV:X}\`, \`\${env:my-var}\`) never becomes literal text. Write \`$\${\` for a
literal \`\${\`. Relative file paths resolve against the config file's folder; every file a config names
must exist when it is loaded (\`config check\`, start, reload). Header names are case-insensitive
(stored lowercase).

A worked example is \`examples/portcullis.yaml\`; the concepts are explained in the README.

| option | type | default | meaning |
|---|---|---|---|
${table.join('\n')}
`;
}
