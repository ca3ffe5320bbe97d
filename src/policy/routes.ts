// Route rules compiled once per config; `RouteTable.match` is first-match-wins on the hot path.
import { canonicalPrefix, matchesPrefix } from '../core/paths.ts';
import type { CredentialKind } from '../core/types.ts';
import type { RouteConfig } from './schema.ts';

export interface Route {
  name: string;
  public: boolean;
  auth: ReadonlySet<CredentialKind>;
  scopes: readonly string[];
  rateLimit?: string;
  methods?: ReadonlySet<string>;
  pathPrefix?: string;
  path?: string;
  host?: string;
}

function compile(r: RouteConfig): Route {
  return {
    name: r.name,
    public: r.public,
    auth: new Set(r.auth ?? []),
    scopes: r.scopes,
    rateLimit: r.rate_limit,
    methods: r.match.methods ? new Set(r.match.methods) : undefined,
    pathPrefix: r.match.path_prefix !== undefined ? canonicalPrefix(r.match.path_prefix) : undefined,
    path: r.match.path,
    host: r.match.host?.toLowerCase(),
  };
}

/** `example.com:8443` -> `example.com`; `[::1]:80` -> `[::1]`. */
export function hostWithoutPort(authority: string): string {
  const a = authority.toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end === -1 ? a : a.slice(0, end + 1);
  }
  const colon = a.indexOf(':');
  return colon === -1 ? a : a.slice(0, colon);
}

export class RouteTable {
  private readonly routes: Route[];
  private readonly named: Map<string, Route>;

  constructor(routes: RouteConfig[]) {
    this.routes = routes.map(compile);
    this.named = new Map(this.routes.map((r) => [r.name, r]));
  }

  /** First rule whose method, host and path all match. HEAD is matched as GET. */
  match(method: string, host: string, path: string): Route | undefined {
    const m = method === 'HEAD' ? 'GET' : method;
    let h: string | undefined;
    for (const r of this.routes) {
      if (r.methods && !r.methods.has(m) && !r.methods.has(method)) continue;
      if (r.path !== undefined && r.path !== path) continue;
      if (r.pathPrefix !== undefined && !matchesPrefix(path, r.pathPrefix)) continue;
      if (r.host !== undefined && r.host !== (h ??= hostWithoutPort(host))) continue;
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
