// Agreement between a proxy's route table and a Portcullis config: every `portcullis.route` context
// extension names a Portcullis route, the route the proxy pins is the one Portcullis would match on
// its own for the same method and path, and every proxy route with ext_authz off only serves paths
// Portcullis also treats as public. Used for the Envoy configs (envoy-routes.test.ts) and for Envoy
// Gateway's HTTPRoutes and SecurityPolicies (control-planes.test.ts, through gatewayRoutes).
import { RouteTable } from '../../../src/policy/routes.ts';
import type { Config } from '../../../src/policy/schema.ts';
import { envoySelect, type EnvoyRoute } from './envoy-config.ts';
import type { K8sObject } from './kustomize.ts';

const KNOWN_EXTENSIONS = new Set(['portcullis.route', 'portcullis.scopes']);
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** Every disagreement between an Envoy route table and a Portcullis config. */
export function disagreements(routes: EnvoyRoute[], config: Config): string[] {
  const table = new RouteTable(config.routes);
  const problems: string[] = [];
  for (const r of routes) {
    const label = `Envoy route ${r.name ?? r.value}`;
    for (const k of Object.keys(r.contextExtensions)) {
      if (!KNOWN_EXTENSIONS.has(k)) problems.push(`${label}: unknown context extension "${k}"`);
    }
    const pinned = r.contextExtensions['portcullis.route'];
    if (pinned !== undefined && !table.byName(pinned))
      problems.push(`${label}: portcullis.route "${pinned}" is not a route in the Portcullis config`);
    if (r.disabled && pinned !== undefined)
      problems.push(`${label}: ext_authz is disabled, so portcullis.route "${pinned}" is never sent`);
    if (r.kind === 'prefix' && r.value === '/') continue; // the catch-all: Portcullis matches by itself
    // Requests this Envoy route really receives (earlier routes take theirs first).
    const paths = r.kind === 'path' ? [r.value] : [r.value, `${r.value.replace(/\/$/, '')}/sub/item`];
    for (const method of r.methods ?? METHODS) {
      for (const path of paths) {
        if (envoySelect(routes, method, path) !== r) continue;
        const own = table.match(method, 'api.example.com', path);
        if (r.disabled && !own?.public) {
          problems.push(
            `${label}: ext_authz is disabled but Portcullis treats ${method} ${path} as ${own ? `protected route "${own.name}"` : 'unmatched (deny)'}`,
          );
        }
        if (pinned !== undefined && own?.name !== pinned) {
          problems.push(
            `${label}: pins "${pinned}" but Portcullis matches ${method} ${path} to ${own ? `"${own.name}"` : 'no route'}`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * The route table Envoy Gateway builds from the HTTPRoutes attached to a Gateway, as EnvoyRoutes:
 * one per match, in Gateway API precedence order (exact path, then the longest prefix, then a
 * method match; https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule), each with the
 * ext_authz settings of the SecurityPolicy that applies to it: the one targeting its HTTPRoute,
 * else the one targeting the Gateway (the most specific wins; fields are not merged).
 */
export function gatewayRoutes(objects: K8sObject[], gateway: string): EnvoyRoute[] {
  const policies = objects.filter((o) => o.kind === 'SecurityPolicy');
  const policyFor = (kind: string, name: string) =>
    policies.find((p) =>
      (p.spec.targetRefs ?? []).some((t: K8sObject) => {
        if (t.sectionName !== undefined)
          throw new Error(`SecurityPolicy ${p.metadata.name}: sectionName targets are not modelled here`);
        return t.group === 'gateway.networking.k8s.io' && t.kind === kind && t.name === name;
      }),
    );
  const entries: { route: EnvoyRoute; order: number }[] = [];
  for (const hr of objects.filter(
    (o) => o.kind === 'HTTPRoute' && (o.spec.parentRefs ?? []).some((p: K8sObject) => p.name === gateway),
  )) {
    const policy = policyFor('HTTPRoute', hr.metadata.name) ?? policyFor('Gateway', gateway);
    const extAuth = policy?.spec.extAuth;
    const contextExtensions = Object.fromEntries(
      (extAuth?.contextExtensions ?? []).map((c: K8sObject) => [c.name, c.value]),
    );
    for (const rule of hr.spec.rules ?? []) {
      for (const m of rule.matches ?? [{ path: { type: 'PathPrefix', value: '/' } }]) {
        if (m.headers || m.queryParams)
          throw new Error(`HTTPRoute ${hr.metadata.name}: header and query matches are not modelled here`);
        const type = m.path?.type ?? 'PathPrefix';
        if (type !== 'PathPrefix' && type !== 'Exact')
          throw new Error(`HTTPRoute ${hr.metadata.name}: path type ${type} is not modelled here`);
        const value = m.path?.value ?? '/';
        entries.push({
          route: {
            name: hr.metadata.name,
            kind: type === 'Exact' ? 'path' : value === '/' ? 'prefix' : 'path_separated_prefix',
            value,
            methods: m.method ? [m.method] : undefined,
            disabled: extAuth === undefined,
            contextExtensions,
          },
          order: entries.length,
        });
      }
    }
  }
  const rank = (r: EnvoyRoute) => [r.kind === 'path' ? 1 : 0, r.value.length, r.methods ? 1 : 0];
  return entries
    .sort((a, b) => {
      const [x, y] = [rank(a.route), rank(b.route)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return y[i] - x[i];
      return a.order - b.order;
    })
    .map((e) => e.route);
}
