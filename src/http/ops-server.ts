// The ops listener: /healthz (alive), /readyz (every dependency ready), /metrics (Prometheus).
// Other capabilities (JWKS for phantom tokens, forward-auth) mount extra handlers here.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OpsHandler } from '../plumbing/component.ts';
import type { App } from '../runtime/app.ts';

export type { OpsHandler };

export interface OpsListener {
  server: Server;
  port: number;
  /** Mounts a handler for a path (exact) or a prefix ending in '/'. */
  mount(path: string, handler: OpsHandler): void;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

export async function startOpsServer(app: App, address: string): Promise<OpsListener> {
  const mounts = new Map<string, OpsHandler>();
  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://ops');
    } catch {
      return json(res, 400, { error: 'invalid_request' });
    }
    const handle = async () => {
      switch (url.pathname) {
        case '/healthz':
          return json(res, 200, { status: 'ok' });
        case '/readyz': {
          const missing = app.notReady();
          app.metrics.ready.set(missing.length ? 0 : 1);
          // Degraded (e.g. Redis lost while local copies serve) stays 200 but is reported.
          const degraded = app.components.readiness.map((r) => r.degraded?.()).filter((d): d is string => !!d);
          return json(
            res,
            missing.length ? 503 : 200,
            missing.length
              ? { status: 'not_ready', waiting_for: missing }
              : degraded.length
                ? { status: 'ready', degraded }
                : { status: 'ready' },
          );
        }
        case '/metrics': {
          const body = await app.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': app.metrics.registry.contentType });
          return res.end(body);
        }
      }
      const own = app.components.opsHandlers.get(url.pathname);
      if (own) return own(req, res, url);
      const exact = mounts.get(url.pathname);
      if (exact) return exact(req, res, url);
      for (const [p, h] of mounts) if (p.endsWith('/') && url.pathname.startsWith(p)) return h(req, res, url);
      return json(res, 404, { error: 'not_found' });
    };
    handle().catch((e) => {
      app.log.error({ err: (e as Error).message, path: url.pathname }, 'ops handler failed');
      if (!res.headersSent) json(res, 503, { error: 'temporarily_unavailable' });
      else res.destroy();
    });
  });
  const { host, port } = splitAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`cannot listen on ${address} (server.http.address): ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    mount: (path, handler) => void mounts.set(path, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
