// protected_resources -> the RFC 9728 metadata documents on the ops listener: one handler per
// well-known path (RFC 9728 §3.1), the documents built (and signed, RFC 9728 §2.2) at start.
// docs/mcp.md, "Serving the metadata", says why they are served here and not through Check.
import type { ServerResponse } from 'node:http';
import type { OpsHandler, ReadinessCheck } from '../plumbing/component.ts';
import { compileProtectedResources, type MetadataSigner, type ProtectedResources } from './metadata.ts';
import { resourceLocation } from './resource-id.ts';
import type { ProtectedResourceConfig } from './schema.ts';

export interface MetadataComponent {
  /** Builds the documents; `signer` is asked for once, after the components it comes from have started. */
  start(): Promise<void>;
  readiness: ReadinessCheck;
  opsHandlers: ReadonlyMap<string, OpsHandler>;
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function createMetadataComponent(
  configs: readonly ProtectedResourceConfig[],
  opts: { signer: () => MetadataSigner | undefined; now: () => number },
): MetadataComponent {
  let docs: ProtectedResources | undefined;
  const handler: OpsHandler = (req, res) => {
    if (!docs) {
      return send(
        res,
        503,
        { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': '1' },
        JSON.stringify({ error: 'temporarily_unavailable' }),
      );
    }
    // The path as received (the ops listener looked the handler up by the resolved one): a path
    // with dot segments or a query is not the document's path.
    const r = docs.wellKnownResponse(req.method ?? '', req.headers.host ?? '', req.url ?? '');
    if (!r) return send(res, 404, { 'content-type': 'application/json' }, JSON.stringify({ error: 'not_found' }));
    send(res, r.status, r.headers, r.body);
  };
  const opsHandlers = new Map<string, OpsHandler>();
  for (const c of configs) for (const p of resourceLocation(c.resource).wellKnownPaths) opsHandlers.set(p, handler);
  return {
    async start() {
      docs = await compileProtectedResources(configs, { signer: opts.signer(), now: opts.now });
    },
    readiness: { name: 'protected_resource_metadata', ready: () => docs !== undefined },
    opsHandlers,
  };
}
