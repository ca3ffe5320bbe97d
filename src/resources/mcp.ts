// The JSON-RPC message of an MCP POST, read from the body Envoy puts in the CheckRequest
// (with_request_body: `attributes.request.http.body`, or `raw_body` with pack_as_bytes), and the
// scopes a tools/call needs for its tool.
//
// Strict on purpose: what Portcullis reads must be what the MCP server acts on. A body that is
// cut short, ambiguous (a member twice: parsers disagree on which one wins), not UTF-8, a batch,
// or whose Mcp-Method / Mcp-Name headers say something else is refused, never allowed on a guess.
//
// MCP Streamable HTTP (2026-07-28): "The body of the HTTP POST MUST be a single JSON-RPC request
// or notification"; batching was removed in 2025-06-18 ("Remove support for JSON-RPC batching").
// https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
// https://modelcontextprotocol.io/specification/2025-06-18/changelog
import type { McpRouteConfig } from './schema.ts';

/**
 * Why a body was refused, with the status and the client-safe description: each is 400
 * invalid_request except mcp_body_not_buffered, 503 temporarily_unavailable (Envoy is not sending
 * bodies for this route: the operator's configuration, not the client's request).
 */
export const MCP_BODY_REASONS = {
  mcp_body_missing: { status: 400, description: 'An MCP POST must carry one JSON-RPC message' },
  mcp_body_not_buffered: { status: 503, description: 'The service is temporarily unavailable' },
  mcp_body_truncated: { status: 400, description: 'The request body was cut short' },
  mcp_body_length_mismatch: { status: 400, description: 'The request body does not match its Content-Length' },
  mcp_body_too_large: { status: 400, description: 'The request body is too large' },
  mcp_body_ambiguous: { status: 400, description: 'The request body was sent twice' },
  mcp_body_encoded: { status: 400, description: 'The request body must not be content-encoded' },
  mcp_body_not_utf8: { status: 400, description: 'The request body is not UTF-8' },
  mcp_body_not_json: { status: 400, description: 'The request body is not JSON' },
  mcp_batch_not_supported: {
    status: 400,
    description: 'JSON-RPC batches are not supported: send one message per POST',
  },
  mcp_body_not_object: { status: 400, description: 'The request body is not a JSON-RPC message' },
  mcp_duplicate_member: { status: 400, description: 'The request body names a member twice' },
  mcp_jsonrpc_version: { status: 400, description: 'The message must have jsonrpc 2.0' },
  mcp_method_missing: { status: 400, description: 'The message has no method' },
  mcp_method_invalid: { status: 400, description: 'The message method is not valid' },
  mcp_id_invalid: { status: 400, description: 'The message id must be a string or an integer' },
  mcp_params_invalid: { status: 400, description: 'The message params must be an object' },
  mcp_tool_name_missing: { status: 400, description: 'A tools/call needs params.name' },
  mcp_tool_name_invalid: { status: 400, description: 'The tool name is not valid' },
  mcp_header_mismatch: { status: 400, description: 'The Mcp-Method or Mcp-Name header does not match the body' },
  mcp_header_missing: { status: 400, description: 'The Mcp-Name header is missing' },
  mcp_header_invalid: { status: 400, description: 'The Mcp-Method or Mcp-Name header is not valid' },
} as const satisfies Record<string, { status: 400 | 503; description: string }>;

export type McpBodyReason = keyof typeof MCP_BODY_REASONS;

/** The one refusal that comes from the tool policy rather than the body: 403 forbidden. */
export const MCP_TOOL_NOT_LISTED = 'mcp_tool_not_listed';

export interface McpMessage {
  /** JSON-RPC `method`, e.g. `tools/call`. */
  method: string;
  /** `params.name` of a tools/call (whether or not it has an id). */
  toolName?: string;
  /**
   * No `id`: a notification. Informational only: scopes follow the method, so a tools/call sent
   * without an id still needs its tool's scopes (a server may run it all the same).
   */
  isNotification: boolean;
}

export type McpRead =
  { ok: true; message: McpMessage } | { ok: false; reason: McpBodyReason; status: 400 | 503; description: string };

export interface McpBodyInput {
  /** Request headers, names in lower case (AuthzRequest.headers). */
  headers: Readonly<Record<string, string>>;
  /** `attributes.request.http.body`: better as the bytes off the wire, so invalid UTF-8 is seen. */
  body?: string | Uint8Array;
  /** `attributes.request.http.raw_body` (pack_as_bytes: true). */
  rawBody?: Uint8Array;
}

/** MCP methods are short ASCII names (`tools/call`, `notifications/initialized`); bounded for logs. */
const METHOD = /^[\x21-\x7e]{1,128}$/;
/** Tool names SHOULD be 1-128 characters (MCP 2026-07-28, Tools); refused past this, or with control characters. */
export const MAX_TOOL_NAME_LENGTH = 512;
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
/** The Mcp-Name value encoding for values that are not plain header text (MCP 2026-07-28, Value Encoding). */
const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
/** Methods whose Mcp-Name header mirrors a params member (MCP 2026-07-28, Standard Request Headers). */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function refuse(reason: McpBodyReason): McpRead {
  const r = MCP_BODY_REASONS[reason];
  return { ok: false, reason, status: r.status, description: r.description };
}

/**
 * The JSON-RPC message of a POST to an MCP route. Call it for POSTs only: other methods carry no
 * message (the route's scopes apply as they are).
 */
export function readMcpMessage(input: McpBodyInput, maxBodyBytes: number): McpRead {
  const h = input.headers;
  const body = input.body !== undefined && input.body.length > 0 ? input.body : undefined;
  const raw = input.rawBody !== undefined && input.rawBody.length > 0 ? input.rawBody : undefined;
  if (body !== undefined && raw !== undefined) return refuse('mcp_body_ambiguous');
  const data = raw ?? body;
  const length = data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;

  // Envoy sets this header (and strips a client's) whenever it sends a body: "true" when
  // max_request_bytes cut it (allow_partial_message). Only "true" is trusted: a copy a client
  // slipped past a renamed header prefix can only get its own request refused.
  if (h['x-envoy-auth-partial-body'] === 'true') return refuse('mcp_body_truncated');
  const declared = h['content-length'];
  if (length === 0) {
    // A declared body Envoy did not send: with_request_body is not configured for this route
    // (an operator's matter: 503, and the log says so), not the client's.
    if (declared !== undefined && declared !== '0') return refuse('mcp_body_not_buffered');
    return refuse('mcp_body_missing');
  }
  if (declared !== undefined) {
    if (!/^\d{1,15}$/.test(declared)) return refuse('mcp_body_length_mismatch');
    const n = Number(declared);
    if (n > length) return refuse('mcp_body_truncated');
    if (n < length) return refuse('mcp_body_length_mismatch');
  }
  if (length > maxBodyBytes) return refuse('mcp_body_too_large');
  const encoding = h['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return refuse('mcp_body_encoded');

  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else {
    try {
      text = utf8.decode(data);
    } catch {
      return refuse('mcp_body_not_utf8');
    }
  }

  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return refuse('mcp_body_not_json');
  }
  if (Array.isArray(msg)) return refuse('mcp_batch_not_supported');
  if (msg === null || typeof msg !== 'object') return refuse('mcp_body_not_object');
  if (hasDuplicateMember(text)) return refuse('mcp_duplicate_member');

  const m = msg as Record<string, unknown>;
  if (!Object.hasOwn(m, 'jsonrpc') || m.jsonrpc !== '2.0') return refuse('mcp_jsonrpc_version');
  // A response (result / error, no method) is not something a client may POST either.
  if (!Object.hasOwn(m, 'method') || typeof m.method !== 'string') return refuse('mcp_method_missing');
  const method = m.method;
  if (!METHOD.test(method)) return refuse('mcp_method_invalid');
  const isNotification = !Object.hasOwn(m, 'id');
  // MCP: "Requests MUST include a string or integer ID"; null is not allowed.
  if (!isNotification && !(typeof m.id === 'string' || (typeof m.id === 'number' && Number.isSafeInteger(m.id))))
    return refuse('mcp_id_invalid');
  let params: Record<string, unknown> | undefined;
  if (Object.hasOwn(m, 'params')) {
    if (m.params === null || typeof m.params !== 'object' || Array.isArray(m.params))
      return refuse('mcp_params_invalid');
    params = m.params as Record<string, unknown>;
  }

  let toolName: string | undefined;
  if (method === 'tools/call') {
    const name = params && Object.hasOwn(params, 'name') ? params.name : undefined;
    if (typeof name !== 'string' || name === '') return refuse('mcp_tool_name_missing');
    if (name.length > MAX_TOOL_NAME_LENGTH || CONTROL.test(name)) return refuse('mcp_tool_name_invalid');
    toolName = name;
  }

  const headerCheck = checkMirroredHeaders(h, method, params);
  if (headerCheck) return refuse(headerCheck);
  return { ok: true, message: { method, toolName, isNotification } };
}

/**
 * MCP 2026-07-28 mirrors `method` in Mcp-Method and `params.name` / `params.uri` in Mcp-Name;
 * "Servers that process the request body MUST reject requests where the values specified in the
 * headers do not match". Earlier revisions send neither header, so each is checked when present;
 * Mcp-Name is required once Mcp-Method shows the client speaks the revision that has it.
 */
function checkMirroredHeaders(
  h: Readonly<Record<string, string>>,
  method: string,
  params: Record<string, unknown> | undefined,
): McpBodyReason | undefined {
  const mcpMethod = h['mcp-method'];
  if (mcpMethod !== undefined) {
    if (!/^[\x21-\x7e]+$/.test(mcpMethod)) return 'mcp_header_invalid';
    if (mcpMethod !== method) return 'mcp_header_mismatch';
  }
  const source = NAME_SOURCE[method];
  const mcpName = h['mcp-name'];
  if (mcpName === undefined) return mcpMethod !== undefined && source !== undefined ? 'mcp_header_missing' : undefined;
  // Mcp-Name on another method mirrors nothing: left to the server.
  if (source === undefined) return undefined;
  const decoded = decodeHeaderValue(mcpName);
  if (decoded === undefined) return 'mcp_header_invalid';
  const bodyValue = params && Object.hasOwn(params, source) ? params[source] : undefined;
  return decoded === bodyValue ? undefined : 'mcp_header_mismatch';
}

/**
 * A plain header value, or the base64 form `=?base64?…?=` decoded (strict base64, strict UTF-8).
 * Anything shaped like the sentinel is the base64 form (clients must encode a plain value that looks
 * like one), so a sentinel with bad base64 inside is malformed, not a literal.
 */
function decodeHeaderValue(v: string): string | undefined {
  if (!(v.startsWith('=?base64?') && v.endsWith('?=') && v.length >= 11))
    return /^[\t\x20-\x7e]*$/.test(v) ? v : undefined;
  const m = SENTINEL.exec(v);
  if (!m) return undefined;
  const b64 = m[1];
  if (b64.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Whether any object in `text` (valid JSON: JSON.parse accepted it) names a member twice. JSON.parse
 * keeps the last; other parsers keep the first or refuse, so the server could act on another value
 * than the one checked here. Names are compared after unescaping (`"na\u006de"` is `"name"`).
 * One pass, no recursion.
 */
export function hasDuplicateMember(text: string): boolean {
  // One entry per open container: the member names of an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  // Whether the next string in the current object is a member name.
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (expectName) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const names = stack[stack.length - 1]!;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return false;
}

/** Index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    let backslashes = 0;
    for (let k = q - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}

// ---- Tool scopes ------------------------------------------------------------------------------

export interface ToolScopes {
  /** Union of the scopes of every matching pattern, in config order; empty when none matched. */
  scopes: readonly string[];
  /** Whether any pattern matched (unlisted_tools applies when none did). */
  listed: boolean;
  /**
   * A bounded label for metrics: the first matching pattern as configured (exact names first), or
   * undefined when none matched. Never the client's tool name, whose values are unbounded.
   */
  pattern?: string;
}

interface CompiledGlob {
  source: string;
  /** Code points, wildcards as STAR / ANY. */
  parts: (string | typeof STAR | typeof ANY)[];
  scopes: readonly string[];
}

const STAR = 0;
const ANY = 1;

/**
 * Compiles `routes[].mcp.tools` once. Precedence when several patterns match a tool: all of them
 * apply (the union of their scopes). Order-free, and adding a pattern can only ever ask for more:
 * a narrower pattern cannot lift what a broader one requires, as "most specific wins" would let it
 * (and "most specific" has no answer for delete_* against *_users). To give some tools fewer scopes
 * than a broad pattern, narrow the broad pattern.
 */
export function compileToolScopes(
  tools: Readonly<Record<string, readonly string[]>>,
  opts: { caseSensitive: boolean },
): (toolName: string) => ToolScopes {
  const fold = opts.caseSensitive ? (s: string) => s : (s: string) => s.toLowerCase();
  const exact = new Map<string, { source: string; scopes: readonly string[] }[]>();
  const globs: CompiledGlob[] = [];
  for (const [pattern, scopes] of Object.entries(tools)) {
    if (!/[*?]/.test(pattern)) {
      const key = fold(pattern);
      const list = exact.get(key) ?? [];
      list.push({ source: pattern, scopes });
      exact.set(key, list);
    } else {
      globs.push({
        source: pattern,
        parts: [...fold(pattern)].map((ch) => (ch === '*' ? STAR : ch === '?' ? ANY : ch)),
        scopes,
      });
    }
  }
  const none: ToolScopes = { scopes: [], listed: false };
  return (toolName) => {
    const name = fold(toolName);
    const chars = globs.length ? [...name] : [];
    const scopes = new Set<string>();
    let pattern: string | undefined;
    for (const e of exact.get(name) ?? []) {
      pattern ??= e.source;
      for (const s of e.scopes) scopes.add(s);
    }
    for (const g of globs) {
      if (!globMatch(g.parts, chars)) continue;
      pattern ??= g.source;
      for (const s of g.scopes) scopes.add(s);
    }
    return pattern === undefined ? none : { scopes: [...scopes], listed: true, pattern };
  };
}

/**
 * Wildcard match by code point: `*` any run (none too), `?` exactly one. Iterative, backtracking
 * only to the last `*`: at most name × pattern steps, whatever the pattern (no regex, no ReDoS).
 */
function globMatch(p: CompiledGlob['parts'], s: string[]): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && p[pi] === STAR) {
      star = pi++;
      mark = si;
    } else if (pi < p.length && (p[pi] === ANY || p[pi] === s[si])) {
      pi++;
      si++;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === STAR) pi++;
  return pi === p.length;
}

// ---- A route's MCP policy ----------------------------------------------------------------------

/** routes[].mcp compiled once per config. */
export interface McpRoutePolicy {
  maxBodyBytes: number;
  /** unlisted_tools: deny. */
  denyUnlisted: boolean;
  toolScopes(toolName: string): ToolScopes;
}

export function mcpRoutePolicy(cfg: McpRouteConfig): McpRoutePolicy {
  return {
    maxBodyBytes: cfg.max_body_bytes,
    denyUnlisted: cfg.unlisted_tools === 'deny',
    toolScopes: compileToolScopes(cfg.tools, { caseSensitive: cfg.tool_names_case_sensitive }),
  };
}

export type McpDecision =
  /** The body: 400 invalid_request (503 for mcp_body_not_buffered). */
  | { kind: 'refused'; reason: McpBodyReason; status: 400 | 503; description: string }
  /** A tools/call of a tool no pattern lists, with unlisted_tools: deny: 403 forbidden, reason mcp_tool_not_listed. */
  | { kind: 'tool_not_listed'; message: McpMessage }
  /** Readable: the token needs the route's scopes plus `toolScopes` (operationScopes). */
  | { kind: 'ok'; message: McpMessage; toolScopes: readonly string[]; pattern?: string };

/** What a POST on an MCP route needs, from its body. Call once the credential is verified. */
export function evaluateMcpPost(policy: McpRoutePolicy, input: McpBodyInput): McpDecision {
  const read = readMcpMessage(input, policy.maxBodyBytes);
  if (!read.ok) return { kind: 'refused', reason: read.reason, status: read.status, description: read.description };
  const message = read.message;
  if (message.toolName === undefined) return { kind: 'ok', message, toolScopes: [] };
  const t = policy.toolScopes(message.toolName);
  if (!t.listed && policy.denyUnlisted) return { kind: 'tool_not_listed', message };
  return { kind: 'ok', message, toolScopes: t.scopes, pattern: t.pattern };
}

/** Every scope an operation needs: the route's, then the tool's, once each (the challenge's `scope`). */
export function operationScopes(routeScopes: readonly string[], toolScopes: readonly string[]): string[] {
  return [...new Set([...routeScopes, ...toolScopes])];
}

/** The tool name for a log line: as is when it has the form MCP recommends, else bounded and made printable. */
export function toolNameForLog(name: string): string {
  if (/^[A-Za-z0-9_.\-/:]{1,128}$/.test(name)) return name;
  const cut = name.length > 128 ? `${name.slice(0, 128)}...` : name;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}
