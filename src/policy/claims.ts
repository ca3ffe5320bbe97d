// Claims: the verified attributes of an identity (a JWT's payload, an introspection answer's
// members, an API key's metadata), bounded before they become `identity.claims`, and read by
// `headers.set` entries such as `x-tenant: claims.tenant`.
import { PolicyConfigError } from './config-error.ts';

export interface ClaimsLimits {
  /** Bytes of the claims' JSON text (UTF-8, without whitespace). */
  maxBytes: number;
  /** Nesting of objects and arrays; the claims object itself is depth 1. */
  maxDepth: number;
}

/**
 * Far above what identity providers issue (a token with 200 group ids is about 8 kB; Envoy's
 * default header limit keeps a JWT under 60 kB), low enough that no condition or header rule ever
 * walks much: an introspection answer is not bounded by any header limit.
 */
export const DEFAULT_CLAIMS_LIMITS: Readonly<ClaimsLimits> = Object.freeze({ maxBytes: 32 * 1024, maxDepth: 16 });

/** Why a set of claims is refused: the credential is then invalid (401 invalid_token, this reason). */
export type ClaimsRefusal = 'claims_too_large' | 'claims_too_deep' | 'claims_invalid';

/**
 * Whether `claims` may become `identity.claims`: a JSON object within the limits. Walks the value
 * without recursion and stops as soon as a bound is crossed, and refuses any nesting at `maxDepth`
 * without touching the stack. The walk costs what the members it visits cost, except that listing
 * an object's member names is one step for all of them (a few ms for 20,000 names, still several
 * times cheaper than JSON.stringify): pass `textBytes`, the length of the JSON text the claims
 * were parsed from (a JWT's payload, an introspection response), and an oversized set is refused
 * before the walk. Better still, compare the text's length with `maxBytes` before parsing it.
 */
export function checkClaims(
  claims: unknown,
  limits: Readonly<ClaimsLimits> = DEFAULT_CLAIMS_LIMITS,
  textBytes?: number,
): { ok: true } | { ok: false; reason: ClaimsRefusal } {
  const refuse = (reason: ClaimsRefusal) => ({ ok: false as const, reason });
  if (textBytes !== undefined && textBytes > limits.maxBytes) return refuse('claims_too_large');
  if (!isPlainObject(claims)) return refuse('claims_invalid');
  let bytes = 0;
  const stack: unknown[] = [claims];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const value = stack.pop();
    const depth = depths.pop()!;
    if (Array.isArray(value)) {
      bytes += value.length === 0 ? 2 : 1 + value.length; // brackets and the commas between items
      if (bytes > limits.maxBytes) return refuse('claims_too_large');
      for (let i = 0; i < value.length; i++) {
        const r = scalarBytes(value[i], limits.maxBytes - bytes);
        if (r === CONTAINER) {
          if (depth + 1 > limits.maxDepth) return refuse('claims_too_deep');
          stack.push(value[i]);
          depths.push(depth + 1);
        } else if (r === INVALID) {
          return refuse('claims_invalid');
        } else {
          bytes += r;
        }
        if (bytes > limits.maxBytes) return refuse('claims_too_large');
      }
      continue;
    }
    const obj = value as Record<string, unknown>;
    bytes += 2;
    let members = 0;
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      const v = obj[key];
      if (v === undefined) continue; // JSON has no undefined; JSON.stringify leaves the member out
      bytes += stringBytes(key, limits.maxBytes - bytes) + (members++ === 0 ? 3 : 4); // ,"key":
      if (bytes > limits.maxBytes) return refuse('claims_too_large');
      const r = scalarBytes(v, limits.maxBytes - bytes);
      if (r === CONTAINER) {
        if (depth + 1 > limits.maxDepth) return refuse('claims_too_deep');
        stack.push(v);
        depths.push(depth + 1);
      } else if (r === INVALID) {
        return refuse('claims_invalid');
      } else {
        bytes += r;
      }
      if (bytes > limits.maxBytes) return refuse('claims_too_large');
    }
  }
  return { ok: true };
}

const CONTAINER = -1;
const INVALID = -2;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** JSON bytes of a scalar (more than `room` once it is known not to fit), or CONTAINER / INVALID. */
function scalarBytes(v: unknown, room: number): number {
  switch (typeof v) {
    case 'string':
      return stringBytes(v, room) + 2;
    case 'number':
      return Number.isFinite(v) ? String(v).length : INVALID;
    case 'boolean':
      return v ? 4 : 5;
    case 'object':
      if (v === null) return 4;
      return Array.isArray(v) || isPlainObject(v) ? CONTAINER : INVALID;
    default:
      return INVALID; // undefined in an array, functions, symbols, bigints: not JSON
  }
}

/** UTF-8 bytes of a string, without measuring one that is longer than `room` characters. */
function stringBytes(s: string, room: number): number {
  if (s.length > room) return s.length; // at least one byte per UTF-16 unit: already over
  return Buffer.byteLength(s, 'utf8');
}

// Header values from claims: `headers.set: { x-tenant: claims.tenant }`.

/** A claim's place in the claims: each element one member name. */
export type ClaimPath = readonly string[];

const MAX_REFERENCE_LENGTH = 256;
const MAX_REFERENCE_DEPTH = 16;
const DOTTED_NAME = /^[^.[\]'"\s]+/;

/** Does a `headers.set` value name a claim (`claims.email`, `claims["https://example.com/roles"]`)? */
export function isClaimReference(value: string): boolean {
  return value.startsWith('claims.') || value.startsWith('claims[');
}

/**
 * The path of a claim reference: `claims.` then member names separated by dots (`claims.realm_access.roles`);
 * a name holding a dot, a bracket or a quote is written in brackets and quotes, as in
 * `claims["https://example.com/roles"]` (Auth0's namespaced claims). Throws a PolicyConfigError naming `where`.
 */
export function parseClaimReference(value: string, where: string): ClaimPath {
  const fail = (detail: string): never => {
    throw new PolicyConfigError(where, `"${value.length > 80 ? `${value.slice(0, 77)}...` : value}": ${detail}`);
  };
  if (!isClaimReference(value)) fail('a claim reference starts with claims. (claims.email, claims.realm_access.roles)');
  if (value.length > MAX_REFERENCE_LENGTH) fail(`a claim reference is at most ${MAX_REFERENCE_LENGTH} characters`);
  const path: string[] = [];
  let i = 'claims'.length;
  while (i < value.length) {
    if (value[i] === '.') {
      const m = DOTTED_NAME.exec(value.slice(i + 1));
      if (!m)
        fail(
          `expected a member name after the dot at column ${i + 1}; write names with dots, brackets, quotes or spaces as ["name"]`,
        );
      path.push(m![0]);
      i += 1 + m![0].length;
    } else if (value[i] === '[') {
      const quote = value[i + 1];
      if (quote !== '"' && quote !== "'") fail(`a bracketed member name is quoted: ["name"] (column ${i + 1})`);
      const close = value.indexOf(quote, i + 2);
      if (close === -1 || value[close + 1] !== ']') fail(`unterminated ["name"] at column ${i + 1}`);
      const name = value.slice(i + 2, close);
      if (name === '') fail(`an empty member name at column ${i + 1}`);
      path.push(name);
      i = close + 2;
    } else {
      fail(`unexpected "${value[i]}" at column ${i + 1}; members are .name or ["name"]`);
    }
  }
  if (path.length > MAX_REFERENCE_DEPTH) fail(`a claim reference names at most ${MAX_REFERENCE_DEPTH} members`);
  return Object.freeze(path);
}

/** Why a header from a claim is left unset (counted, never logged with the value). */
export type ClaimHeaderSkip = 'claim_absent' | 'claim_empty' | 'claim_unsupported_type';

/**
 * The header value for the claim at `path`: a string as it is, a number or boolean as its JSON
 * text, a list of non-empty strings joined with spaces (each in the safe form on its own, so the
 * spaces keep separating the items, as for x-scopes). Absent or null, empty, or anything else (an
 * object, a mixed list): not set, and why. Every string goes through `safeForm`, the header
 * rule's safe-form function (headers.ts): it returns the value as it may be sent, or throws
 * (UnsafeHeaderValueError: the Check is denied as for any identity value).
 */
export function claimHeaderValue(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: ClaimPath,
  safeForm: (value: string) => string,
): { ok: true; value: string } | { ok: false; reason: ClaimHeaderSkip } {
  let v: unknown = claims;
  for (const name of path) {
    if (!isPlainObject(v) || !Object.hasOwn(v, name)) return { ok: false, reason: 'claim_absent' };
    v = v[name];
  }
  switch (typeof v) {
    case 'string':
      return v === '' ? { ok: false, reason: 'claim_empty' } : { ok: true, value: safeForm(v) };
    case 'number':
      return Number.isFinite(v)
        ? { ok: true, value: safeForm(JSON.stringify(v)) }
        : { ok: false, reason: 'claim_unsupported_type' };
    case 'boolean':
      return { ok: true, value: safeForm(v ? 'true' : 'false') };
    case 'undefined':
      return { ok: false, reason: 'claim_absent' };
    case 'object': {
      if (v === null) return { ok: false, reason: 'claim_absent' };
      if (!Array.isArray(v)) return { ok: false, reason: 'claim_unsupported_type' };
      if (v.length === 0) return { ok: false, reason: 'claim_empty' };
      if (!v.every((item) => typeof item === 'string' && item !== ''))
        return { ok: false, reason: 'claim_unsupported_type' };
      return { ok: true, value: (v as string[]).map(safeForm).join(' ') };
    }
    default:
      return { ok: false, reason: 'claim_unsupported_type' };
  }
}
