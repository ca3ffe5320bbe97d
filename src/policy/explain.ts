// `portcullis check --explain`: why a route was chosen, what each of its conditions gave, and the
// claims they read. For the operator, on their own machine, with their own token: it prints claim
// values, which nothing else in Portcullis ever does.
import type { ConditionInput } from '../core/conditions.ts';
import { normalizeHost } from '../core/host.ts';
import { lowerAscii, matchesExact, matchesPrefix, normalizePath } from '../core/paths.ts';
import type { AuthzRequest, Identity } from '../core/types.ts';
import { parseClaimReference } from './claims.ts';
import type { Route, RouteTable } from './routes.ts';

export interface RouteExplanation {
  /** The route chosen, or undefined. */
  route: string | undefined;
  why: string;
  /** Routes before it that did not match, and the first part that did not. */
  skipped: Array<{ route: string; because: string }>;
  params?: Readonly<Record<string, string>>;
  conditions?: Array<{ where: string; name?: string; expr: string; result: boolean | string }>;
  /** The claims the conditions read, with their values (absent: not in the output). */
  claims_read?: Record<string, unknown>;
}

/** Why the first route that matches does, and why each one before it does not. */
function mismatch(r: Route, method: string, host: string, path: string): string | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  if (r.methods && !r.methods.has(m) && !r.methods.has(method))
    return `method ${method} not in [${[...r.methods].join(', ')}]`;
  const p = r.caseSensitive ? path : lowerAscii(path);
  if (r.path !== undefined && !matchesExact(p, r.path, !r.public)) return `path is not ${r.path}`;
  if (r.pathPrefix !== undefined && !matchesPrefix(p, r.pathPrefix, !r.public))
    return `path is not under ${r.pathPrefix}`;
  if (r.pathTemplate && r.pathTemplate.match(path, undefined, !r.public) === undefined)
    return `path does not fit ${r.pathTemplate.source}`;
  if (r.host !== undefined && r.host !== host) return `host is not ${r.host}`;
  if (r.hostPattern && !r.hostPattern.matches(host)) return `host does not match ${r.hostPattern.source}`;
  return undefined;
}

function matchedBy(r: Route): string {
  const parts: string[] = [];
  if (r.methods) parts.push(`methods [${[...r.methods].join(', ')}]`);
  if (r.path !== undefined) parts.push(`path ${r.path}`);
  if (r.pathPrefix !== undefined) parts.push(`path_prefix ${r.pathPrefix}`);
  if (r.pathTemplate) parts.push(`path_template ${r.pathTemplate.source}`);
  if (r.host !== undefined) parts.push(`host ${r.host}`);
  if (r.hostPattern) parts.push(`host ${r.hostPattern.source}`);
  return parts.length ? parts.join(', ') : 'a route without match criteria (matches everything)';
}

export function explainDecision(
  table: RouteTable,
  req: AuthzRequest,
  identity: Identity | undefined,
  nowMs: number,
  sourceIp: string,
): RouteExplanation {
  const host = normalizeHost(req.host);
  const n = normalizePath(req.rawPath);
  if (host === undefined || !n.ok)
    return { route: undefined, why: 'the request was refused before any route was chosen', skipped: [] };
  const named = req.contextExtensions['portcullis.route'];
  const skipped: RouteExplanation['skipped'] = [];
  let route: Route | undefined;
  let why: string;
  if (named !== undefined) {
    route = table.byName(named);
    why = route ? `named by Envoy (context extension portcullis.route=${named})` : `Envoy named an unknown route`;
  } else {
    for (const r of table.all) {
      const because = mismatch(r, req.method, host, n.path);
      if (because === undefined) {
        route = r;
        break;
      }
      skipped.push({ route: r.name, because });
    }
    why = route ? `the first route that matches: ${matchedBy(route)}` : 'no route matches (default deny)';
  }
  const out: RouteExplanation = { route: route?.name, why, skipped };
  if (!route?.conditions) return out;
  const input: ConditionInput = {
    method: req.method,
    host,
    path: n.path,
    rawPath: req.rawPath,
    headers: req.headers,
    sourceIp,
    contextExtensions: req.contextExtensions,
    identity,
    nowMs,
  };
  out.params = { ...route.conditions.params(n.path) };
  const claimsRead: Record<string, unknown> = {};
  out.conditions = route.conditions.explain(input).map((c) => {
    for (const p of c.claimsRead) {
      const v = claimAt(identity?.claims, p);
      if (v !== undefined) claimsRead[p] = v;
    }
    return {
      where: c.where,
      ...(c.name !== undefined ? { name: c.name } : {}),
      expr: c.source,
      result: c.result.ok ? c.result.value : `error: ${c.result.error.code} at ${c.result.error.at}`,
    };
  });
  out.claims_read = claimsRead;
  return out;
}

function claimAt(claims: Readonly<Record<string, unknown>> | undefined, dotted: string): unknown {
  let v: unknown = claims;
  for (const name of parseClaimReference(dotted.startsWith('[') ? `claims${dotted}` : `claims.${dotted}`, 'explain')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, name)) return undefined;
    v = (v as Record<string, unknown>)[name];
  }
  return v;
}
