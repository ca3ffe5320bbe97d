// Where an issuer's JWKS comes from: a configured jwks_uri, OIDC discovery, or a local file.
// Only URLs from the config (or from the configured issuer's own discovery document) are fetched;
// never one taken from a token. Every fetch has a timeout and a size limit.
import { readFile } from 'node:fs/promises';
import type { JwtIssuerConfig } from '../../policy/schema.ts';
import { childSpansOn, serverAttributes, withChildSpan, type SpanHandle } from '../../telemetry/tracing.ts';

const MAX_DOCUMENT_BYTES = 512 * 1024;

export interface JwksSource {
  /** For logs: where the keys come from. */
  readonly description: string;
  /** `full`: also re-read discovery (background refresh); otherwise reuse the known jwks_uri. */
  load(opts: { full: boolean }): Promise<unknown>;
}

/** Why a fetch failed, in words an operator can act on (fetch's own "fetch failed" says little). */
export function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'timed out';
  const cause = err?.cause;
  if (cause?.code)
    return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  if (cause?.message) return cause.message;
  return err?.message ?? String(e);
}

/** `code` on an error: what a span records as error.type (never the message, which holds the URL). */
function withCode(err: Error, code: string | undefined): Error {
  if (code !== undefined) Object.assign(err, { code });
  return err;
}

function fetchErrorCode(e: unknown): string | undefined {
  const err = e as Error & { cause?: { code?: unknown } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'TIMEOUT';
  return typeof err?.cause?.code === 'string' ? err.cause.code : undefined;
}

/**
 * GET a JSON document. Under a traced Check (a key fetch for a kid the Check needs), a CLIENT span
 * `kind` with the host and the status, never the URL (a JWKS URL can carry a key in its query).
 */
export function fetchJson(url: string, timeoutMs: number, kind: 'jwks' | 'discovery' = 'jwks'): Promise<unknown> {
  if (!childSpansOn()) return getJson(url, timeoutMs);
  return withChildSpan(kind, serverAttributes(url), (span) => getJson(url, timeoutMs, span));
}

async function getJson(url: string, timeoutMs: number, span?: SpanHandle): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw withCode(new Error(`GET ${url}: ${describeFetchError(e)}`, { cause: e }), fetchErrorCode(e));
  }
  span?.set('http.response.status_code', res.status);
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    // error.type of the span: the status, as the HTTP semantic conventions name a failed request.
    throw withCode(new Error(`GET ${url}: HTTP ${res.status}`), String(res.status));
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_DOCUMENT_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`GET ${url}: document of ${declared} bytes exceeds ${MAX_DOCUMENT_BYTES}`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw new Error(`GET ${url}: ${describeFetchError(e)}`, { cause: e });
  }
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`GET ${url}: document exceeds ${MAX_DOCUMENT_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: response is not JSON`);
  }
}

/** `<issuer>/.well-known/openid-configuration` (OIDC Discovery §4: appended to the issuer's path). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

export function createJwksSource(cfg: JwtIssuerConfig, index: number, resolvePath: (p: string) => string): JwksSource {
  const where = `credentials.jwt[${index}]`;
  const timeout = cfg.fetch_timeout_ms;
  if (cfg.jwks_file !== undefined) {
    const file = resolvePath(cfg.jwks_file);
    return {
      description: `${where}.jwks_file ${file}`,
      async load() {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
            cause: e,
          });
        }
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new Error(`${file} is not JSON`);
        }
      },
    };
  }
  if (cfg.jwks_uri !== undefined) {
    const uri = cfg.jwks_uri;
    return { description: `${where}.jwks_uri ${uri}`, load: () => fetchJson(uri, timeout) };
  }
  const url = discoveryUrl(cfg.issuer);
  let jwksUri: string | undefined;
  return {
    description: `${where}.discovery ${url}`,
    async load({ full }) {
      if (full || jwksUri === undefined) {
        try {
          const doc = (await fetchJson(url, timeout, 'discovery')) as { issuer?: unknown; jwks_uri?: unknown } | null;
          if (typeof doc !== 'object' || doc === null) throw new Error(`${url}: not a discovery document`);
          // OIDC Discovery §4.3: the document's issuer must be exactly the configured one, or
          // another party's keys could be trusted for this issuer.
          if (doc.issuer !== cfg.issuer)
            throw new Error(
              `${url}: "issuer" is ${JSON.stringify(doc.issuer)}, expected ${JSON.stringify(cfg.issuer)}`,
            );
          if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri))
            throw new Error(`${url}: no http(s) "jwks_uri"`);
          if (doc.jwks_uri.startsWith('http:') && !cfg.allow_http) {
            throw new Error(
              `${url}: "jwks_uri" ${doc.jwks_uri} is plain http (set ${where}.allow_http: true only for local development)`,
            );
          }
          jwksUri = doc.jwks_uri;
        } catch (e) {
          // A known jwks_uri keeps working while discovery itself is down.
          if (jwksUri === undefined) throw e;
        }
      }
      return fetchJson(jwksUri, timeout);
    },
  };
}
