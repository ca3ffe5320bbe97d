// RFC 9728 protected resource metadata: the JSON document of each `protected_resources` entry,
// optionally signed (RFC 9728 §2.2), and the answer to a request for it at its well-known path
// (RFC 9728 §3). Built once per config; a request for the document is a map lookup. How the
// document reaches clients (the ops listener, with Envoy routing each well-known path to it) and
// why not through Check: docs/mcp.md, "Serving the metadata". https://www.rfc-editor.org/rfc/rfc9728
import { SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { normalizeHost } from '../core/host.ts';
import { resourceLocation } from './resource-id.ts';
import type { ProtectedResourceConfig } from './schema.ts';

/**
 * Members that describe what Portcullis enforces elsewhere (DPoP, certificate-bound tokens): filled
 * in from that configuration, never written by hand, so the document cannot promise what is not checked.
 */
export interface MetadataExtras {
  dpop_signing_alg_values_supported?: readonly string[];
  dpop_bound_access_tokens_required?: boolean;
  tls_client_certificate_bound_access_tokens?: boolean;
}

export type MetadataDocument = Readonly<Record<string, unknown>>;

/**
 * The RFC 9728 §2 document, members in a fixed order. Members with no value (an empty list, a
 * false flag) are left out: RFC 9728 §3.2 says zero-valued parameters MUST be omitted.
 */
export function metadataDocument(cfg: ProtectedResourceConfig, extras: MetadataExtras = {}): MetadataDocument {
  const doc: Record<string, unknown> = { resource: cfg.resource };
  const put = (name: string, value: unknown) => {
    if (value === undefined || value === false) return;
    if (Array.isArray(value) && value.length === 0) return;
    doc[name] = Array.isArray(value) ? [...new Set(value)] : value;
  };
  put('authorization_servers', cfg.authorization_servers);
  put('scopes_supported', cfg.scopes_supported);
  // Portcullis reads bearer tokens from the Authorization header only: access_token in a query is
  // refused (access_token_in_query) and form bodies are not read.
  put('bearer_methods_supported', ['header']);
  put('resource_name', cfg.resource_name);
  put('resource_documentation', cfg.resource_documentation);
  put('resource_policy_uri', cfg.resource_policy_uri);
  put('resource_tos_uri', cfg.resource_tos_uri);
  put('jwks_uri', cfg.jwks_uri);
  put('resource_signing_alg_values_supported', cfg.resource_signing_alg_values_supported);
  put('authorization_details_types_supported', cfg.authorization_details_types_supported);
  put('tls_client_certificate_bound_access_tokens', extras.tls_client_certificate_bound_access_tokens);
  put('dpop_signing_alg_values_supported', extras.dpop_signing_alg_values_supported);
  put('dpop_bound_access_tokens_required', extras.dpop_bound_access_tokens_required);
  return doc;
}

/** Signs a claims set as a compact JWS. */
export type MetadataSigner = (claims: Record<string, unknown>) => Promise<string>;

/**
 * A MetadataSigner over a jose key (the phantom-token signing key: credentials/phantom/keys.ts).
 * `typ: JWT`, not `at+jwt`: an upstream that accepts phantom access tokens signed by the same key
 * (RFC 9068 requires typ at+jwt) does not take this document for one.
 */
export function joseMetadataSigner(key: {
  privateKey: CryptoKey | KeyObject | Uint8Array;
  alg: string;
  kid?: string;
}): MetadataSigner {
  return (claims) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, typ: 'JWT', ...(key.kid !== undefined ? { kid: key.kid } : {}) })
      .sign(key.privateKey);
}

/**
 * RFC 9728 §2.2 `signed_metadata`: the document's members as claims, with `iss` (the party
 * attesting them: required) and `iat`; never `signed_metadata` itself.
 */
export function signMetadata(
  doc: MetadataDocument,
  issuer: string,
  signer: MetadataSigner,
  nowMs: number,
): Promise<string> {
  const claims: Record<string, unknown> = { ...doc, iss: issuer, iat: Math.floor(nowMs / 1000) };
  delete claims.signed_metadata;
  return signer(claims);
}

export interface ProtectedResource {
  resource: string;
  routes: readonly string[];
  /** The `resource_metadata` URL for challenges (RFC 9728 §5.1). */
  metadataUrl: string;
  /** Paths the document is answered at (RFC 9728 §3.1). */
  wellKnownPaths: readonly string[];
  /** normalizeHost of the resource's authority: the Host a request for the document names. */
  hostKey: string;
  document: MetadataDocument;
  /** The JSON served: the document, plus signed_metadata when signed. */
  body: string;
}

export function prepareProtectedResource(
  cfg: ProtectedResourceConfig,
  extras: MetadataExtras = {},
  signedMetadata?: string,
): ProtectedResource {
  const loc = resourceLocation(cfg.resource);
  const document = metadataDocument(cfg, extras);
  const served = signedMetadata === undefined ? document : { ...document, signed_metadata: signedMetadata };
  return {
    resource: cfg.resource,
    routes: cfg.routes,
    metadataUrl: loc.metadataUrl,
    wellKnownPaths: loc.wellKnownPaths,
    hostKey: loc.hostKey,
    document,
    body: JSON.stringify(served),
  };
}

export interface CompileOptions {
  extras?: (cfg: ProtectedResourceConfig) => MetadataExtras;
  /** Needed when an entry has signed_metadata. */
  signer?: MetadataSigner;
  now?: () => number;
}

/** Every entry prepared, the signed ones signed. Throws (at load) when signing is asked for without a signer. */
export async function compileProtectedResources(
  configs: readonly ProtectedResourceConfig[],
  opts: CompileOptions = {},
): Promise<ProtectedResources> {
  const out: ProtectedResource[] = [];
  for (const [i, cfg] of configs.entries()) {
    const extras = opts.extras?.(cfg) ?? {};
    let signed: string | undefined;
    if (cfg.signed_metadata) {
      if (!opts.signer) {
        throw new Error(
          `protected_resources[${i}].signed_metadata: no signing key; configure credentials.introspection.phantom_token.keys`,
        );
      }
      signed = await signMetadata(
        metadataDocument(cfg, extras),
        cfg.signed_metadata.issuer ?? cfg.resource,
        opts.signer,
        (opts.now ?? Date.now)(),
      );
    }
    out.push(prepareProtectedResource(cfg, extras, signed));
  }
  return new ProtectedResources(out);
}

export interface MetadataHttpResponse {
  status: 200 | 204 | 405;
  headers: Record<string, string>;
  /** Empty for HEAD, OPTIONS and 405. */
  body: string;
}

/** Short enough that a reload that changes authorization_servers reaches clients soon. */
export const METADATA_MAX_AGE_SECONDS = 300;
const ALLOWED_METHODS = 'GET, HEAD, OPTIONS';

export class ProtectedResources {
  private readonly byRoute = new Map<string, ProtectedResource>();
  /** hostKey + path -> resource. */
  private readonly byLocation = new Map<string, ProtectedResource>();
  /** path -> resource, for a path only one resource uses (a request whose Host was rewritten on the way). */
  private readonly byPath = new Map<string, ProtectedResource | null>();

  constructor(readonly list: readonly ProtectedResource[]) {
    for (const r of list) {
      for (const route of r.routes) this.byRoute.set(route, r);
      for (const p of r.wellKnownPaths) {
        this.byLocation.set(r.hostKey + p, r);
        this.byPath.set(p, this.byPath.has(p) && this.byPath.get(p) !== r ? null : r);
      }
    }
  }

  /** The protected resource a route belongs to, if any. */
  forRoute(route: string): ProtectedResource | undefined {
    return this.byRoute.get(route);
  }

  /** The resource whose metadata `rawPath` (as received, query ignored, no decoding) asks for at `host`. */
  lookup(host: string, rawPath: string): ProtectedResource | undefined {
    const q = rawPath.indexOf('?');
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    const h = normalizeHost(host);
    return (h !== undefined ? this.byLocation.get(h + path) : undefined) ?? this.byPath.get(path) ?? undefined;
  }

  /**
   * The answer to a request for a metadata document, or undefined when the path is none of them.
   * `rawPath` is the path as received: exact match, so `/.well-known/oauth-protected-resource/x/../mcp`
   * is no document (an HTTP server that resolves dot segments first must not be given the resolved path).
   */
  wellKnownResponse(method: string, host: string, rawPath: string): MetadataHttpResponse | undefined {
    const r = this.lookup(host, rawPath);
    if (!r) return undefined;
    // The document is public and read by browser-based clients from other origins: any origin may
    // read it (no credentials are involved), and a preflight (MCP clients add MCP-Protocol-Version) is answered.
    const cors = { 'access-control-allow-origin': '*' };
    if (method === 'GET' || method === 'HEAD') {
      return {
        status: 200,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(r.body)),
          'cache-control': `public, max-age=${METADATA_MAX_AGE_SECONDS}`,
          'x-content-type-options': 'nosniff',
          ...cors,
        },
        body: method === 'HEAD' ? '' : r.body,
      };
    }
    if (method === 'OPTIONS') {
      return {
        status: 204,
        headers: {
          ...cors,
          'access-control-allow-methods': ALLOWED_METHODS,
          'access-control-allow-headers': '*',
          'access-control-max-age': '86400',
        },
        body: '',
      };
    }
    return { status: 405, headers: { allow: ALLOWED_METHODS, ...cors }, body: '' };
  }
}
