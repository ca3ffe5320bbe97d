// Route rules compiled once per config; `RouteTable.match` is first-match-wins on the hot path.
// Literals are canonicalized here, once: paths as normalizePath reads them (and lower-cased unless
// the route is case-sensitive), hosts as normalizeHost reads them. A Check then lowers its path at
// most once and compares strings.
import { normalizeHost } from '../core/host.ts';
import { canonicalPrefix, lowerAscii, matchesExact, matchesPrefix, normalizePath } from '../core/paths.ts';
import type { RouteMatcher, RouteRule } from '../core/policy.ts';
import type { CredentialKind } from '../core/types.ts';
import { compileHostPattern, type HostPattern } from './host-pattern.ts';
import { compilePathTemplate, type PathTemplate } from './path-template.ts';
import { CompiledRouteConditions } from './route-conditions.ts';
import type { RouteConfig } from './schema.ts';

export interface Route extends RouteRule {
  name: string;
  public: boolean;
  auth: ReadonlySet<CredentialKind>;
  scopes: readonly string[];
  rateLimit?: string;
  methods?: ReadonlySet<string>;
  pathPrefix?: string;
  path?: string;
  host?: string;
  /** `match.host: "*.example.com"` (an exact host is `host`). */
  hostPattern?: HostPattern;
  /** `match.path_template`. */
  pathTemplate?: PathTemplate;
  /** Path literals compared as written; otherwise both sides are lower case. */
  caseSensitive: boolean;
  conditions?: CompiledRouteConditions;
  shadow: boolean;
}

/** A path literal as a normalized request path would spell it (the schema has validated it). */
function pathLiteral(p: string, caseSensitive: boolean): string {
  const n = normalizePath(p);
  const canonical = canonicalPrefix(n.ok ? n.path : p);
  return caseSensitive ? canonical : lowerAscii(canonical);
}

/** Throws a PolicyConfigError with the config path of what does not compile (the schema checks first). */
function compile(r: RouteConfig, i: number): Route {
  const caseSensitive = r.match.case_sensitive ?? r.case_sensitive ?? false;
  const wildcard = r.match.host?.startsWith('*.') === true;
  const pathTemplate =
    r.match.path_template !== undefined
      ? compilePathTemplate(r.match.path_template, `routes[${i}].match.path_template`, caseSensitive)
      : undefined;
  return {
    name: r.name,
    public: r.public,
    auth: new Set(r.auth ?? []),
    scopes: r.scopes,
    rateLimit: r.rate_limit,
    senderConstraint: r.sender_constraint ?? 'none',
    methods: r.match.methods ? new Set(r.match.methods) : undefined,
    pathPrefix: r.match.path_prefix !== undefined ? pathLiteral(r.match.path_prefix, caseSensitive) : undefined,
    path: r.match.path !== undefined ? pathLiteral(r.match.path, caseSensitive) : undefined,
    host:
      r.match.host !== undefined && !wildcard ? (normalizeHost(r.match.host) ?? r.match.host.toLowerCase()) : undefined,
    hostPattern: wildcard ? compileHostPattern(r.match.host!, `routes[${i}].match.host`) : undefined,
    pathTemplate,
    caseSensitive,
    conditions: r.when?.length
      ? new CompiledRouteConditions(r.when, `routes[${i}].when`, pathTemplate, r.public)
      : undefined,
    shadow: r.mode === 'shadow',
  };
}

export class RouteTable implements RouteMatcher {
  private readonly routes: Route[];
  private readonly named: Map<string, Route>;

  constructor(routes: RouteConfig[]) {
    this.routes = routes.map((r, i) => compile(r, i));
    this.named = new Map(this.routes.map((r) => [r.name, r]));
  }

  /**
   * First rule whose method, host and path all match. HEAD is matched as GET. `host` is the
   * canonical host (normalizeHost), `path` the normalized path (normalizePath).
   */
  match(method: string, host: string, path: string): Route | undefined {
    const m = method === 'HEAD' ? 'GET' : method;
    let lower: string | undefined;
    for (const r of this.routes) {
      if (r.methods && !r.methods.has(m) && !r.methods.has(method)) continue;
      if (r.path !== undefined || r.pathPrefix !== undefined) {
        const p = r.caseSensitive ? path : (lower ??= lowerAscii(path));
        if (r.path !== undefined && !matchesExact(p, r.path, !r.public)) continue;
        if (r.pathPrefix !== undefined && !matchesPrefix(p, r.pathPrefix, !r.public)) continue;
      }
      if (r.pathTemplate !== undefined) {
        const lowered = r.caseSensitive ? undefined : (lower ??= lowerAscii(path));
        const params = r.conditions
          ? r.conditions.matchTemplate(path, lowered)
          : r.pathTemplate.match(path, lowered, !r.public);
        if (params === undefined) continue;
      }
      if (r.host !== undefined && r.host !== host) continue;
      if (r.hostPattern !== undefined && !r.hostPattern.matches(host)) continue;
      return r;
    }
    return undefined;
  }

  byName(name: string): Route | undefined {
    return this.named.get(name);
  }

  get all(): readonly Route[] {
    return this.routes;
  }
}
