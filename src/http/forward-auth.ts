// HTTP forward-auth: the decision core for proxies that authorize over HTTP (Envoy's ext_authz
// http_service, nginx auth_request, Traefik ForwardAuth). An adapter only, like the gRPC one (src/envoy/):
// it builds the AuthzRequest the gRPC path builds, calls app.check, and writes the Decision the way
// these proxies read it (docs/forward-auth.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { deny, denyBody } from '../core/decision.ts';
import type { Decision, Deny, HeaderSet } from '../core/types.ts';
import type { App } from '../runtime/app.ts';
import type { Config } from '../policy/schema.ts';
import { parseForwardAuthCall } from './forward-auth-request.ts';
import type { OpsHandler } from './ops-server.ts';
import { TrustedProxies, unmapIPv4 } from './trusted-proxies.ts';
import { runCheck, type CheckSpan, type HeaderMap, type Tracing } from '../telemetry/tracing.ts';

/** Envoy's http_service removes these request headers before the upstream (honoured on 200 only). */
export const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove';
/** nginx mode: the real deny status and body, for the nginx config to rebuild the response. */
export const STATUS_HEADER = 'x-portcullis-status';
export const BODY_HEADER = 'x-portcullis-body';

const trustedByConfig = new WeakMap<Config['forward_auth'], TrustedProxies>();

function trustedProxies(cfg: Config['forward_auth']): TrustedProxies {
  // Compiled once per config generation; a reload brings a new object and so a new list.
  let t = trustedByConfig.get(cfg);
  if (!t) trustedByConfig.set(cfg, (t = new TrustedProxies(cfg.trusted_proxies)));
  return t;
}

/**
 * The handler for `prefix` and `prefix/…` on the ops listener. `prefix` is fixed at start;
 * `enabled` and `trusted_proxies` are read from the running config on every call.
 */
export function forwardAuthHandler(app: App, prefix: string): OpsHandler {
  const call = (a: { req: IncomingMessage; res: ServerResponse }) => forwardAuth(app, prefix, a.req, a.res);
  return async (req, res) => {
    const tracing = app.tracing;
    if (tracing.enabled && app.config.forward_auth.enabled) await tracedForwardAuth(tracing, prefix, call, req, res);
    else await forwardAuth(app, prefix, req, res);
  };
}

/**
 * With tracing on: the call is an HTTP SERVER span joined to the trace in its own headers (Envoy's
 * http_service injects its span there), and what the Check waits for nests under it.
 */
async function tracedForwardAuth(
  tracing: Tracing,
  prefix: string,
  call: (a: { req: IncomingMessage; res: ServerResponse }) => Promise<Decision | undefined>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  let span: CheckSpan;
  try {
    // Node joins repeated headers it does not know with ", "; the propagators read strings only.
    span = tracing.startForwardAuthSpan(req.headers as HeaderMap, req.method ?? '', prefix);
  } catch {
    // Tracing never fails a call.
    await call({ req, res });
    return;
  }
  let d: Decision | undefined;
  try {
    d = await runCheck(tracing, span, call, { req, res });
  } finally {
    try {
      if (d) span.setDecision(d);
      span.end(res.headersSent ? res.statusCode : 500);
    } catch {
      // A span that cannot be finished is lost; the answer is already written.
    }
  }
}

/** One forward-auth call; the Decision written, if it came to one. */
async function forwardAuth(
  app: App,
  prefix: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<Decision | undefined> {
  // No body is needed (Envoy sends none unless with_request_body; nginx and Traefik never do).
  req.resume();
  const cfg = app.config.forward_auth;
  if (!cfg.enabled) return void writeJson(res, 404, { error: 'not_found' });
  const realm = app.config.realm;
  const peer = unmapIPv4(req.socket.remoteAddress ?? '');

  if (!trustedProxies(cfg).has(peer)) {
    const d = deny('forward_auth_untrusted_peer', realm);
    app.metrics.countDecision(d, 0);
    app.log.warn(
      { peer, path: prefix },
      'forward-auth call from a peer outside forward_auth.trusted_proxies denied with 403; if this is your proxy, add its address there',
    );
    writeDecision(res, d, false);
    return d;
  }

  const parsed = parseForwardAuthCall(
    { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, peerIp: peer },
    prefix,
  );
  if (!parsed.ok) {
    const d = deny(parsed.reason, realm);
    app.metrics.countDecision(d, 0);
    // Which header was wrong, never its value: the request may carry credentials.
    app.log.info(
      { peer, reason: parsed.reason },
      'forward-auth call malformed; denied with 400 (check the proxy config against docs/forward-auth.md)',
    );
    writeDecision(res, d, parsed.nginxMode);
    return d;
  }
  const decision = await app.check(parsed.request);
  writeDecision(res, decision, parsed.nginxMode);
  return decision;
}

function setHeaders(res: ServerResponse, hs: readonly HeaderSet[]): void {
  for (const h of hs) res.setHeader(h.name, h.value);
}

function writeDecision(res: ServerResponse, d: Decision, nginxMode: boolean): void {
  try {
    res.setHeader('cache-control', 'no-store');
    if (d.allowed) {
      setHeaders(res, d.set);
      // Never lists a header it also sets (decide guarantees it): Envoy would drop the trusted value.
      if (d.remove.length) res.setHeader(HEADERS_TO_REMOVE, d.remove.join(', '));
      setHeaders(res, d.responseHeaders);
      res.writeHead(200, { 'content-length': '0' });
      res.end();
      return;
    }
    const body = denyBody(d);
    setHeaders(res, d.responseHeaders);
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(body));
    res.writeHead(nginxMode ? nginxStatus(d, res, body) : d.status);
    res.end(body);
  } catch {
    // A header value Node refuses (cannot come from decide, which rejects CR/LF/NUL): still a deny.
    if (res.headersSent) return void res.destroy();
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': '1' });
    res.end(
      JSON.stringify({ error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable' }),
    );
  }
}

/**
 * nginx's auth_request passes only 2xx, 401 and 403 (anything else becomes 500), and never the
 * body. So in nginx mode a deny keeps 401, every other status becomes 403, and the real status and
 * JSON body travel in headers that the shipped config (deploy/nginx) turns back into the response.
 */
function nginxStatus(d: Deny, res: ServerResponse, body: string): 401 | 403 {
  res.setHeader(STATUS_HEADER, String(d.status));
  res.setHeader(BODY_HEADER, body);
  return d.status === 401 ? 401 : 403;
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
