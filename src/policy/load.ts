// Reading a config file: YAML, ${env:NAME} references, then the schema. Every error carries its path.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { configSchema, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file; relative paths inside it resolve against its folder. */
  file: string;
  dir: string;
}

// `${env:NAME}` reads NAME from the environment. Any other `${` is an error rather than text: a
// reference mistyped as `${ENV:X}` or `${env:lower-case}` must not end up as a literal secret. `$${`
// is a literal `${`. An unset or empty variable is an error: an empty secret is never intended, and a
// value that should be empty can be written in the file.
const REFERENCE = /\$\$\{|\$\{([^}]*)(\}?)/g;
const ENV_NAME = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

function substituteString(text: string, path: string, env: NodeJS.ProcessEnv, problems: string[]): string {
  const where = path || '(root)';
  return text.replace(REFERENCE, (match, inner: string | undefined, closed: string | undefined) => {
    if (match === '$${') return '${';
    const shown = inner!.length > 40 ? `${inner!.slice(0, 40)}…` : inner;
    if (!closed) {
      problems.push(`${where}: "\${${shown}" has no closing "}" (write $\${ for a literal \${)`);
      return '';
    }
    const name = ENV_NAME.exec(inner!)?.[1];
    if (!name) {
      problems.push(
        `${where}: "\${${shown}}" is not a reference: write \${env:NAME} (NAME: letters, digits and _, not starting with a digit), or $\${ for a literal \${`,
      );
      return '';
    }
    const v = env[name];
    if (v === undefined) problems.push(`${where}: environment variable ${name} is not set`);
    else if (v === '')
      problems.push(
        `${where}: environment variable ${name} is empty (an empty value can be written in the file itself)`,
      );
    return v ?? '';
  });
}

function substituteEnv(node: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof node === 'string') return substituteString(node, path, env, problems);
  if (Array.isArray(node)) return node.map((v, i) => substituteEnv(v, `${path}[${i}]`, env, problems));
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = substituteEnv(v, path ? `${path}.${k}` : k, env, problems);
    return out;
  }
  return node;
}

function formatPath(path: PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(root)';
}

/** Parses and validates config text. Throws ConfigError listing every problem with its path. */
export function parseConfig(text: string, file = '<inline>', env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown;
  try {
    raw = parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    throw new ConfigError(file, [`YAML: ${(e as Error).message}`]);
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, ['(root): must be a mapping']);
  const problems: string[] = [];
  const substituted = substituteEnv(raw, '', env, problems);
  if (problems.length) throw new ConfigError(file, problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  }
  return result.data;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new ConfigError(abs, [`cannot read file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  // An empty file is valid YAML for "all defaults" (no routes: deny everything). As a reload it is
  // almost always a file caught mid-write or truncated by mistake, so it is refused, not served.
  if (text.trim() === '')
    throw new ConfigError(abs, ['the file is empty (caught mid-write?); write the whole config, then reload']);
  return { config: parseConfig(text, abs, env), file: abs, dir: dirname(abs) };
}
