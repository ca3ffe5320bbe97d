// `match.path_template`: a path with named segments, `/v1/tenants/{tenant}/orders/{id}`. `{name}` is
// exactly one non-empty segment, a final `{name...}` one or more remaining segments. The values
// become `request.params`, percent-decoded after matching, so an escape can never make a segment.
// Compiled once per config into a list of segments; a Check walks the path once, without a regex.
import { lowerAscii, normalizePath } from '../core/paths.ts';
import { PolicyConfigError } from './config-error.ts';

type Segment = { kind: 'literal'; text: string } | { kind: 'one' | 'rest'; name: string };

export interface PathTemplate {
  readonly source: string;
  /** The variables' names, in order. */
  readonly names: readonly string[];
  /**
   * The values of a normalized path (normalizePath), or undefined when it does not match. `lowered`
   * is the path in lower case if the caller has it (a case-insensitive template compares literals
   * with it). With `formatSuffix` (protected routes, as for an exact path), a final literal
   * segment also matches with a format suffix: `/v1/tenants/{t}/export` matches `.../export.json`.
   * A path with a trailing slash matches as the path without it. The values are a new object
   * without a prototype on every match (a template without variables: one shared frozen object).
   */
  match(path: string, lowered?: string, formatSuffix?: boolean): Readonly<Record<string, string>> | undefined;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const VARIABLE = /^\{([^{}]*?)(\.\.\.)?\}$/;
const MAX_LENGTH = 1024;

/** Compiles a template, or throws a PolicyConfigError naming `where` (e.g. `routes[0].match.path_template`). */
export function compilePathTemplate(template: string, where: string, caseSensitive = false): PathTemplate {
  const fail = (detail: string): never => {
    throw new PolicyConfigError(where, detail);
  };
  if (typeof template !== 'string' || !template.startsWith('/')) fail('a path template starts with /');
  if (template.length > MAX_LENGTH) fail(`a path template is at most ${MAX_LENGTH} characters`);
  if (template === '/') fail('a path template needs at least one segment; for the root use match.path: /');
  if (template.endsWith('/'))
    fail('a path template does not end with /; it also matches the trailing-slash form of a path');
  if (/[?#]/.test(template)) fail('a path template is a path only, without ? or #; conditions can read request.query');

  const segments: Segment[] = [];
  const names: string[] = [];
  const parts = template.slice(1).split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '') fail('a path template has no empty segments (//)');
    if (segments.length > 0 && segments[segments.length - 1].kind === 'rest') {
      fail(`{${names[names.length - 1]}...} takes the rest of the path: it must be the last segment`);
    }
    if (!part.includes('{') && !part.includes('}')) {
      segments.push({ kind: 'literal', text: literalSegment(part, fail) });
      continue;
    }
    const m = VARIABLE.exec(part);
    if (!m)
      fail(`"${part}": a variable is a whole segment, {name} or a final {name...} (not part of one, as in order-{id})`);
    const name = m![1];
    if (name === '') fail(`"${part}": a variable needs a name, e.g. {id}`);
    if (!NAME.test(name))
      fail(`"${part}": a variable name is letters, digits and _ (not starting with a digit), at most 64`);
    if (names.includes(name)) fail(`the variable {${name}} appears twice`);
    names.push(name);
    segments.push({ kind: m![2] ? 'rest' : 'one', name });
  }
  if (!caseSensitive) for (const s of segments) if (s.kind === 'literal') s.text = lowerAscii(s.text);
  return new CompiledTemplate(template, segments, names, caseSensitive);
}

/** A literal segment must be one a normalized path can hold, written as normalization writes it. */
function literalSegment(part: string, fail: (detail: string) => never): string {
  const n = normalizePath(`/${part}`);
  if (!n.ok) fail(`no request path can match the segment "${part}" (${n.reason}); see docs/security.md#paths`);
  if (n.ok && n.path !== `/${part}`)
    fail(`the segment "${part}" is written "${n.path.slice(1)}" in a normalized path; write it that way`);
  return part;
}

const EMPTY = Object.freeze(Object.create(null) as Record<string, string>);
const SLASH = 47;
const DOT = 46;

class CompiledTemplate implements PathTemplate {
  constructor(
    readonly source: string,
    private readonly segments: readonly Segment[],
    readonly names: readonly string[],
    private readonly caseSensitive: boolean,
  ) {}

  match(path: string, lowered?: string, formatSuffix = false): Readonly<Record<string, string>> | undefined {
    if (path.charCodeAt(0) !== SLASH) return undefined;
    const cmp = this.caseSensitive ? path : (lowered ?? lowerAscii(path));
    // A trailing slash is the same path (as for an exact match): matching stops before it.
    const end = path.length > 1 && path.charCodeAt(path.length - 1) === SLASH ? path.length - 1 : path.length;
    let values: Record<string, string> | undefined;
    let pos = 1;
    const last = this.segments.length - 1;
    for (let i = 0; i <= last; i++) {
      if (pos > end) return undefined;
      const s = this.segments[i];
      if (s.kind === 'rest') {
        if (pos >= end) return undefined;
        const value = decodeSegments(path, pos, end);
        if (value === undefined) return undefined;
        (values ??= Object.create(null) as Record<string, string>)[s.name] = value;
        pos = end + 1;
        break;
      }
      let segEnd = path.indexOf('/', pos);
      if (segEnd === -1 || segEnd > end) segEnd = end;
      if (s.kind === 'literal') {
        const len = s.text.length;
        if (!cmp.startsWith(s.text, pos)) return undefined;
        if (
          pos + len !== segEnd &&
          !(formatSuffix && i === last && segEnd === end && cmp.charCodeAt(pos + len) === DOT)
        )
          return undefined;
      } else {
        if (segEnd === pos) return undefined;
        const value = decodeSegment(path.slice(pos, segEnd));
        if (value === undefined) return undefined;
        (values ??= Object.create(null) as Record<string, string>)[s.name] = value;
      }
      pos = segEnd + 1;
    }
    if (pos <= end) return undefined; // path segments left over
    // Not frozen: freezing a prototype-less object costs more than the whole match.
    return values ?? EMPTY;
  }
}

/**
 * One segment's value, percent-decoded. Undefined if it does not decode or decodes to a separator
 * (`/`, `\`, NUL): normalizePath refuses `%2F`, `%5C` and `%00` before any route is matched (400),
 * so this is a second line, for a caller that passes a path it did not normalize.
 */
function decodeSegment(raw: string): string | undefined {
  if (raw.indexOf('%') === -1) return raw;
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (value.includes('/') || value.includes('\\') || value.includes('\0')) return undefined;
  return value;
}

/** The segments of path[from, to), each decoded on its own, joined with "/". */
function decodeSegments(path: string, from: number, to: number): string | undefined {
  const raw = path.slice(from, to);
  if (raw.indexOf('%') === -1) return raw.includes('//') ? undefined : raw;
  const out: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '') return undefined;
    const v = decodeSegment(seg);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out.join('/');
}
