// The query string, read once per Check for what the decision cares about: parameters that would
// change the method after the route was authorized, and parameters that carry a credential.
// docs/security.md, "Method override" and "Credentials in the query".

/** A query parameter that names a credential (RFC 6750 `access_token`, the API-key parameter). */
export interface QueryCredential {
  /** The credential parameter it is, as configured (e.g. `access_token`, `api_key`). */
  name: string;
  /** The name as the request spells it (`query_parameters_to_remove` matches raw names exactly). */
  rawName: string;
  /** The percent-decoded value, or undefined when it does not decode. */
  value: string | undefined;
  /** Separated from the previous parameter by `;` rather than `&`: Envoy cannot remove it. */
  afterSemicolon: boolean;
}

export interface QueryScan {
  /** The name of a method-override parameter, if any (`_method`, `X-HTTP-Method-Override`, ...). */
  methodOverride: string | undefined;
  credentials: QueryCredential[];
}

export const NO_QUERY: QueryScan = Object.freeze({
  methodOverride: undefined,
  credentials: Object.freeze([]) as unknown as QueryCredential[],
});

/**
 * Reads the parameters of `rawPath`'s query. Names are compared the way the most lenient framework
 * reads them: percent-decoded, `+` as space, case-insensitively, and split on `;` as well as `&`
 * (older Python, Tornado). `credentialNames` must be lower case.
 */
export function scanQuery(rawPath: string, credentialNames: readonly string[]): QueryScan {
  const q = rawPath.indexOf('?');
  if (q === -1) return NO_QUERY;
  let methodOverride: string | undefined;
  let credentials: QueryCredential[] | undefined;
  let start = q + 1;
  let afterSemicolon = false;
  for (let i = start; i <= rawPath.length; i++) {
    const c = i < rawPath.length ? rawPath.charCodeAt(i) : 38; /* & */
    if (c !== 38 && c !== 59 /* ; */) continue;
    if (i > start) {
      const eq = rawPath.indexOf('=', start);
      const nameEnd = eq === -1 || eq > i ? i : eq;
      // Most parameters (page=2, expand=items) can be neither: judged by length and characters
      // before any string is made.
      if (mayMatter(rawPath, start, nameEnd, credentialNames)) {
        const rawName = rawPath.slice(start, nameEnd);
        const name = decodeName(rawName);
        if (methodOverride === undefined && isMethodOverrideName(name)) methodOverride = name.slice(0, 64);
        const lower = name.toLowerCase();
        if (credentialNames.includes(lower)) {
          (credentials ??= []).push({
            name: lower,
            rawName,
            value: nameEnd === i ? '' : decodeValue(rawPath.slice(nameEnd + 1, i)),
            afterSemicolon,
          });
        }
      }
    }
    afterSemicolon = c === 59;
    start = i + 1;
  }
  if (methodOverride === undefined && credentials === undefined) return NO_QUERY;
  return { methodOverride, credentials: credentials ?? NO_QUERY.credentials };
}

/**
 * Could the parameter name in rawPath[start, end) be a method override or a credential? An escaped
 * name (`%` or `+`) always may; otherwise an override name contains "method" (in any case) and has
 * at least 7 characters ("_method"), and a credential name has the length of one of `credentialNames`.
 */
function mayMatter(rawPath: string, start: number, end: number, credentialNames: readonly string[]): boolean {
  const n = end - start;
  for (const c of credentialNames) if (c.length === n) return true;
  let method = false;
  for (let i = start; i < end; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 37 /* % */ || c === 43 /* + */) return true;
    if (
      !method &&
      n >= 7 &&
      (c | 0x20) === 109 /* m */ &&
      i + 6 <= end &&
      rawPath.slice(i + 1, i + 6).toLowerCase() === 'ethod'
    )
      method = true;
  }
  return method;
}

/** Percent-decoding that never throws: an escape that is not valid UTF-8 is kept as it is. */
function decodeName(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  const plus = raw.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

function decodeValue(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

// Header names frameworks take a method override from (Google APIs, ASP.NET, Express
// method-override: X-HTTP-Method-Override; OData: X-HTTP-Method; X-Method-Override), compared with
// "_" as "-" because CGI-style servers (PHP, Rack) give both spellings the same name.
const OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** Is this request header (lower-case name) a method override? */
export function isMethodOverrideHeader(name: string): boolean {
  // Runs for every header of every Check: almost every name is rejected by its length alone.
  const n = name.length;
  if (n !== 13 && n !== 17 && n !== 22) return false;
  return OVERRIDE_HEADERS.has(name.includes('_') ? name.replaceAll('_', '-') : name);
}

/**
 * Is this query parameter name a method override? `_method` (Rails, Laravel, Symfony, Express
 * method-override, CakePHP; PHP also turns " method" and ".method" into "_method"), any spelling
 * of the override headers (`X-HTTP-Method-Override`, `x_http_method`), and names saying
 * "method override" or "http method" (`methodOverride`, `httpMethod`). A plain `method` is an
 * ordinary parameter (payment methods, RPC names) and is left alone.
 */
export function isMethodOverrideName(name: string): boolean {
  let lower = name.toLowerCase();
  if (lower.indexOf('method') === -1) return false;
  // PHP drops leading spaces and reads "name[...]" as the array "name".
  lower = lower.trimStart();
  const bracket = lower.indexOf('[');
  if (bracket > 0) lower = lower.slice(0, bracket);
  if (lower === 'method') return false;
  const squashed = lower.replace(/[-_. ]/g, '');
  return squashed === 'method' || squashed.includes('methodoverride') || squashed.includes('httpmethod');
}
