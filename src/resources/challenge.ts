// WWW-Authenticate challenges as values, not strings glued together: every parameter value goes
// out as an RFC 9110 quoted-string (RFC 9110 §11.2, §5.6.4), so a `"` or `\` in a configured value
// can never end the value early and start a parameter of its own, and a character a header may not
// carry (CR, LF, NUL, other controls, non-ASCII) is refused instead of sent.
//
// Several challenges can share one header (`Bearer realm="x", DPoP algs="ES256"`, RFC 9449 §7.2),
// and RFC 9728 §5.1 lets `resource_metadata` go on any of them: addChallengeParams parses the header
// Portcullis built, adds the parameters to the challenges of the schemes asked for, and writes it
// back. https://www.rfc-editor.org/rfc/rfc9110#section-11.2

/** One challenge: `scheme` then either auth-params or a token68 (RFC 9110 §11.2). */
export interface Challenge {
  scheme: string;
  /** In order; names are compared case-insensitively (RFC 9110 §11.2) and occur once each. */
  params: [name: string, value: string][];
  token68?: string;
}

/** A value a challenge cannot carry. Thrown for configuration values: config validation catches them first. */
export class ChallengeValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChallengeValueError';
  }
}

/** Schemes that carry OAuth parameters (RFC 6750 §3, RFC 9449 §7.1): the default for addChallengeParams. */
export const OAUTH_SCHEMES: readonly string[] = ['Bearer', 'DPoP'];

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// quoted-string content: HTAB, SP and visible ASCII; `"` and `\` are escaped. obs-text (bytes
// 0x80-0xFF) is allowed by RFC 9110 but has no single reading in a JS string: refused.
const QUOTABLE = /^[\t\x20-\x7e]*$/;

/** `"value"` with `\` and `"` escaped; throws ChallengeValueError for characters no header may carry. */
export function quotedString(value: string): string {
  if (!QUOTABLE.test(value))
    throw new ChallengeValueError('a challenge parameter value may hold only tab, space and visible ASCII characters');
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function formatChallenge(c: Challenge): string {
  if (!TOKEN.test(c.scheme)) throw new ChallengeValueError(`"${c.scheme}" is not an auth-scheme token`);
  if (c.token68 !== undefined) {
    if (c.params.length) throw new ChallengeValueError('a challenge has either a token68 or parameters, not both');
    if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(c.token68)) throw new ChallengeValueError('not a token68');
    return `${c.scheme} ${c.token68}`;
  }
  if (c.params.length === 0) return c.scheme;
  const seen = new Set<string>();
  const parts = c.params.map(([name, value]) => {
    if (!TOKEN.test(name)) throw new ChallengeValueError(`"${name}" is not an auth-param name`);
    const key = name.toLowerCase();
    if (seen.has(key)) throw new ChallengeValueError(`auth-param "${name}" occurs twice in one challenge`);
    seen.add(key);
    return `${name}=${quotedString(value)}`;
  });
  return `${c.scheme} ${parts.join(', ')}`;
}

export function formatChallenges(cs: readonly Challenge[]): string {
  return cs.map(formatChallenge).join(', ');
}

// Parsing: the header is one Portcullis wrote (the decision table, the DPoP challenge), so anything
// outside the grammar is a bug and throws rather than being guessed at.
const RE = {
  token: /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y,
  token68: /[A-Za-z0-9\-._~+/]+=*/y,
  ows: /[ \t]*/y,
  sp: / +/y,
  quoted: /"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"/y,
};

function at(re: RegExp, s: string, pos: number): RegExpExecArray | null {
  re.lastIndex = pos;
  return re.exec(s);
}

/** auth-param = token BWS "=" BWS ( token / quoted-string ) at `pos`, or undefined. */
function paramAt(s: string, pos: number): { name: string; value: string; end: number } | undefined {
  const name = at(RE.token, s, pos);
  if (!name) return undefined;
  let p = pos + name[0].length;
  p += at(RE.ows, s, p)![0].length;
  if (s[p] !== '=') return undefined;
  p += 1;
  p += at(RE.ows, s, p)![0].length;
  const q = at(RE.quoted, s, p);
  if (q) return { name: name[0], value: q[1].replace(/\\(.)/g, '$1'), end: p + q[0].length };
  const t = at(RE.token, s, p);
  if (t) return { name: name[0], value: t[0], end: p + t[0].length };
  return undefined;
}

/** Skips OWS and list commas (RFC 9110 §5.6.1 allows empty list elements); returns the new position. */
function skipSeparators(s: string, pos: number): { pos: number; sawComma: boolean } {
  let sawComma = false;
  for (;;) {
    pos += at(RE.ows, s, pos)![0].length;
    if (s[pos] !== ',') return { pos, sawComma };
    sawComma = true;
    pos++;
  }
}

/** The challenges of a WWW-Authenticate value. Throws on anything outside RFC 9110's grammar. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let pos = skipSeparators(header, 0).pos;
  while (pos < header.length) {
    const scheme = at(RE.token, header, pos);
    if (!scheme) throw new Error(`WWW-Authenticate: expected an auth-scheme at ${pos}`);
    const c: Challenge = { scheme: scheme[0], params: [] };
    out.push(c);
    pos += scheme[0].length;
    const sp = at(RE.sp, header, pos);
    if (sp) {
      const afterSp = pos + sp[0].length;
      const first = paramAt(header, afterSp);
      if (first) {
        c.params.push([first.name, first.value]);
        pos = first.end;
        // More auth-params of this challenge, until a token that is not followed by "=" (the
        // next challenge's scheme).
        for (;;) {
          const sep = skipSeparators(header, pos);
          if (sep.pos < header.length && !sep.sawComma)
            throw new Error(`WWW-Authenticate: unexpected character at ${sep.pos}`);
          if (sep.pos >= header.length) {
            pos = sep.pos;
            break;
          }
          const next = paramAt(header, sep.pos);
          if (!next) {
            pos = sep.pos;
            break;
          }
          c.params.push([next.name, next.value]);
          pos = next.end;
        }
        continue;
      }
      const t68 = at(RE.token68, header, afterSp);
      if (t68) {
        c.token68 = t68[0];
        pos = afterSp + t68[0].length;
      } else {
        pos = afterSp;
      }
    }
    const sep = skipSeparators(header, pos);
    if (sep.pos < header.length && !sep.sawComma)
      throw new Error(`WWW-Authenticate: unexpected character at ${sep.pos}`);
    pos = sep.pos;
  }
  return out;
}

export interface AddParamsOptions {
  /** Schemes (case-insensitive) whose challenges get the parameters. Default: Bearer and DPoP. */
  schemes?: readonly string[];
  /** When no challenge of those schemes is present: add one of this scheme carrying just the parameters. */
  createScheme?: string;
}

/**
 * The header with `params` on every challenge of the chosen schemes. A parameter already present
 * (compared case-insensitively) is replaced: RFC 9110 §11.2 allows each name once per challenge.
 * An absent or empty header stays as it is unless `createScheme` is given.
 */
export function addChallengeParams(
  header: string | undefined,
  params: readonly (readonly [string, string])[],
  opts: AddParamsOptions = {},
): string | undefined {
  const schemes = new Set((opts.schemes ?? OAUTH_SCHEMES).map((s) => s.toLowerCase()));
  const challenges = header ? parseChallenges(header) : [];
  let touched = false;
  for (const c of challenges) {
    if (!schemes.has(c.scheme.toLowerCase())) continue;
    // A token68 challenge (Basic, Negotiate) has no parameters to add to.
    if (c.token68 !== undefined) continue;
    c.params = mergeParams(c.params, params);
    touched = true;
  }
  if (!touched && opts.createScheme !== undefined) {
    challenges.push({ scheme: opts.createScheme, params: mergeParams([], params) });
  }
  if (challenges.length === 0) return header;
  return formatChallenges(challenges);
}

function mergeParams(existing: [string, string][], add: readonly (readonly [string, string])[]): [string, string][] {
  const out = existing.slice();
  for (const [name, value] of add) {
    const i = out.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
    if (i >= 0) out[i] = [out[i][0], value];
    else out.push([name, value]);
  }
  return out;
}

// RFC 6750 §3: scope tokens are NQCHAR (%x21 / %x23-5B / %x5D-7E), space-separated; RFC 9470 §3
// gives acr_values the same space-separated form. No quote or backslash: a client that splits on
// them, as many do, reads the same list.
const NQCHAR_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Whether `v` can be one scope (RFC 6750 §3) or one ACR value in a challenge. */
export function isChallengeToken(v: string): boolean {
  return NQCHAR_TOKEN.test(v);
}

/** RFC 6750 §3 error_description: %x20-21 / %x23-5B / %x5D-7E. */
export function isErrorDescription(v: string): boolean {
  return /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(v);
}

function tokenList(kind: string, values: readonly string[]): string {
  for (const v of values)
    if (!isChallengeToken(v))
      throw new ChallengeValueError(`${kind} value is not a token of visible ASCII without quotes or backslashes`);
  return [...new Set(values)].join(' ');
}

export interface ResourceChallengeParams {
  /** RFC 9728 §5.1. */
  resourceMetadata?: string;
  /** RFC 6750 §3 `scope`: every scope the operation needs (MCP: all in one challenge). */
  scope?: readonly string[];
  /** RFC 9470 §3. */
  acrValues?: readonly string[];
  /** RFC 9470 §3: seconds, a non-negative integer. */
  maxAge?: number;
}

/**
 * The auth-params for a protected resource's challenge, in a fixed order: scope, acr_values,
 * max_age, resource_metadata. `error` / `error_description` stay with the caller (the decision table).
 */
export function resourceChallengeParams(p: ResourceChallengeParams): [string, string][] {
  const out: [string, string][] = [];
  if (p.scope && p.scope.length) out.push(['scope', tokenList('scope', p.scope)]);
  if (p.acrValues && p.acrValues.length) out.push(['acr_values', tokenList('acr_values', p.acrValues)]);
  if (p.maxAge !== undefined) {
    if (!Number.isSafeInteger(p.maxAge) || p.maxAge < 0)
      throw new ChallengeValueError('max_age must be a non-negative integer (RFC 9470 §3)');
    out.push(['max_age', String(p.maxAge)]);
  }
  if (p.resourceMetadata !== undefined) out.push(['resource_metadata', p.resourceMetadata]);
  return out;
}
