// `portcullis check`: one request through the same App the server runs, decision printed as JSON.
import { pino } from 'pino';
import { newHeaderMap } from '../core/header-map.ts';
import type { AuthzRequest } from '../core/types.ts';
import { App } from '../runtime/app.ts';
import { Metrics } from '../runtime/metrics.ts';
import { clientAddress } from '../core/ip.ts';
import { explainDecision } from '../policy/explain.ts';
import { loadConfigFile } from '../policy/load.ts';
import { RouteTable } from '../policy/routes.ts';
import { UsageError } from './usage.ts';

export interface CheckOptions {
  config: string;
  method: string;
  path: string;
  host: string;
  header: string[];
  sourceIp: string;
  context: string[];
  explain?: boolean;
  /** The request body (with_request_body). */
  data?: string;
}

export async function runCheck(opts: CheckOptions): Promise<number> {
  const headers = newHeaderMap();
  for (const h of opts.header) {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError(`-H/--header "${h.slice(0, 40)}" must look like 'name: value'`);
    const k = h.slice(0, i).trim().toLowerCase();
    const v = h.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
  }
  const contextExtensions: Record<string, string> = {};
  for (const c of opts.context) {
    const i = c.indexOf('=');
    if (i <= 0) throw new UsageError(`--context "${c}" must look like key=value`);
    contextExtensions[c.slice(0, i)] = c.slice(i + 1);
  }
  const loaded = loadConfigFile(opts.config);
  // Logs go to stderr at warn: stdout is the decision.
  const log = pino({ level: 'warn' }, pino.destination(2));
  // One decision printed, no span exported.
  const app = await App.create({ loaded, log, metrics: new Metrics({ defaultMetrics: false }), tracing: false });
  try {
    const deadline = Date.now() + 10_000;
    while (!app.isReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!app.isReady()) log.warn({ waiting_for: app.notReady() }, 'not every dependency is ready; deciding anyway');
    const method = opts.method.toUpperCase();
    const req: AuthzRequest = {
      method,
      host: opts.host,
      rawPath: opts.path,
      headers: { ':method': method, ':path': opts.path, ':authority': opts.host, ...headers },
      sourceIp: opts.sourceIp,
      contextExtensions,
      requestId: headers['x-request-id'],
    };
    const nowMs = Date.now();
    if (opts.data !== undefined) {
      // What Envoy adds with the body: the request is whole (no max_request_bytes cut).
      req.body = opts.data;
      req.headers['x-envoy-auth-partial-body'] = 'false';
    }
    const d = await app.check(req);
    const out: Record<string, unknown> = d.allowed
      ? {
          allowed: true,
          status: d.status,
          route: d.route,
          reason: d.reason,
          headers_set: Object.fromEntries(d.set.map((h) => [h.name, h.value])),
          headers_removed: d.remove,
          query_parameters_removed: d.removeQuery,
          response_headers: Object.fromEntries(d.responseHeaders.map((h) => [h.name, h.value])),
          identity: d.identity
            ? {
                method: d.identity.method,
                subject: d.identity.subject,
                client_id: d.identity.clientId,
                scopes: d.identity.scopes,
                key_id: d.identity.keyId,
              }
            : undefined,
          // mode: shadow: what the route would have answered (Envoy is told to allow either way).
          shadow: d.shadow
            ? { would_status: d.shadow.status, would_reason: d.shadow.reason, condition: d.shadow.condition }
            : undefined,
          mcp_tool: d.mcp?.tool,
        }
      : {
          allowed: false,
          status: d.status,
          route: d.route,
          reason: d.reason,
          error: d.error,
          error_description: d.description,
          response_headers: Object.fromEntries(d.responseHeaders.map((h) => [h.name, h.value])),
          condition: d.condition,
          mcp_tool: d.mcp?.tool,
        };
    if (opts.explain) {
      const policy = app.policy;
      const identity = d.allowed ? (d.identity ?? d.shadow?.identity) : d.identity;
      const sourceIp = policy.sourceIp
        ? (clientAddress(req.sourceIp, req.headers[policy.sourceIp.header], policy.sourceIp.trustedHops) ??
          req.sourceIp)
        : req.sourceIp;
      if (policy.routes instanceof RouteTable)
        out.explain = explainDecision(policy.routes, req, identity, nowMs, sourceIp);
    }
    console.log(JSON.stringify(out, null, 2));
    return d.allowed ? 0 : 1;
  } finally {
    await app.close();
  }
}
