// The JSON-RPC message of an MCP POST (src/resources/mcp.ts), from real MCP bodies as Envoy puts
// them in the CheckRequest (`body` string, or `raw_body` bytes), and the per-tool scopes.
import { describe, expect, it } from 'vitest';
import { isErrorDescription } from '../../src/resources/challenge.ts';
import {
  compileToolScopes,
  evaluateMcpPost,
  hasDuplicateMember,
  mcpRoutePolicy,
  MCP_BODY_REASONS,
  operationScopes,
  readMcpMessage,
  toolNameForLog,
  type McpBodyInput,
} from '../../src/resources/mcp.ts';
import { mcpRouteSchema } from '../../src/resources/schema.ts';

const MAX = 64 * 1024;
const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'ExampleClient', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

// Bodies as MCP clients send them (MCP 2026-07-28, Streamable HTTP and Tools examples).
const TOOLS_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'get_weather', arguments: { location: 'Seattle, WA' }, _meta: META },
});
const TOOLS_LIST = JSON.stringify({
  jsonrpc: '2.0',
  id: 'req-7',
  method: 'tools/list',
  params: { cursor: 'optional-cursor-value', _meta: META },
});
const INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
const RESOURCES_READ = JSON.stringify({
  jsonrpc: '2.0',
  id: 2,
  method: 'resources/read',
  params: { uri: 'file:///projects/myapp/config.json', _meta: META },
});

/** Headers as Envoy sends them with a buffered body: content-length and x-envoy-auth-partial-body. */
function envoyHeaders(body: string | Uint8Array, extra: Record<string, string> = {}): Record<string, string> {
  const n = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  return {
    'content-type': 'application/json',
    'content-length': String(n),
    'x-envoy-auth-partial-body': 'false',
    ...extra,
  };
}

function read(body: string, extra: Record<string, string> = {}, max = MAX) {
  return readMcpMessage({ headers: envoyHeaders(body, extra), body }, max);
}

function reason(input: McpBodyInput | string, max = MAX): string {
  const r = typeof input === 'string' ? read(input, {}, max) : readMcpMessage(input, max);
  return r.ok ? 'ok' : r.reason;
}

describe('readable MCP messages', () => {
  it('tools/call: the method and the tool name', () => {
    expect(read(TOOLS_CALL)).toEqual({
      ok: true,
      message: { method: 'tools/call', toolName: 'get_weather', isNotification: false },
    });
  });

  it('tools/list and a notification: the method, no tool', () => {
    expect(read(TOOLS_LIST)).toEqual({
      ok: true,
      message: { method: 'tools/list', toolName: undefined, isNotification: false },
    });
    expect(read(INITIALIZED)).toEqual({
      ok: true,
      message: { method: 'notifications/initialized', toolName: undefined, isNotification: true },
    });
  });

  it('the same from the body as bytes and from raw_body (pack_as_bytes)', () => {
    const bytes = new TextEncoder().encode(TOOLS_CALL);
    const expected = { ok: true, message: { method: 'tools/call', toolName: 'get_weather', isNotification: false } };
    expect(readMcpMessage({ headers: envoyHeaders(bytes), body: bytes }, MAX)).toEqual(expected);
    expect(readMcpMessage({ headers: envoyHeaders(bytes), rawBody: bytes }, MAX)).toEqual(expected);
    // Envoy leaves the other field empty.
    expect(readMcpMessage({ headers: envoyHeaders(bytes), body: '', rawBody: bytes }, MAX)).toEqual(expected);
  });

  it('a tools/call without an id still names its tool: scopes follow the method, not the id', () => {
    const body = '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_repo"}}';
    expect(read(body)).toEqual({
      ok: true,
      message: { method: 'tools/call', toolName: 'delete_repo', isNotification: true },
    });
  });

  it('a non-ASCII tool name, whitespace around the JSON, no content-length (HTTP/2, chunked)', () => {
    const body = '\n {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"météo"}} \n';
    expect(readMcpMessage({ headers: { 'x-envoy-auth-partial-body': 'false' }, body }, MAX)).toEqual({
      ok: true,
      message: { method: 'tools/call', toolName: 'météo', isNotification: false },
    });
  });
});

describe('bodies refused with a specific reason (400 invalid_request)', () => {
  it('a batch: MCP removed JSON-RPC batching in 2025-06-18', () => {
    expect(reason(`[${TOOLS_CALL}]`)).toBe('mcp_batch_not_supported');
    expect(reason(`[${TOOLS_LIST},${TOOLS_CALL}]`)).toBe('mcp_batch_not_supported');
    expect(reason('[]')).toBe('mcp_batch_not_supported');
  });

  it('not JSON, or JSON that is not a message object', () => {
    for (const b of [
      '{"jsonrpc":"2.0",',
      '{jsonrpc:"2.0"}',
      "{'jsonrpc':'2.0'}",
      'jsonrpc=2.0&method=tools/call',
      '\ufeff' + TOOLS_CALL,
      TOOLS_CALL + '}',
    ]) {
      expect(reason(b), b).toBe('mcp_body_not_json');
    }
    for (const b of ['null', '42', '"tools/call"', 'true']) expect(reason(b), b).toBe('mcp_body_not_object');
  });

  it('a wrong or missing jsonrpc version', () => {
    for (const v of ['"1.0"', '2.0', '"2.0 "', 'null'])
      expect(reason(`{"jsonrpc":${v},"id":1,"method":"tools/list"}`), v).toBe('mcp_jsonrpc_version');
    expect(reason('{"id":1,"method":"tools/list"}')).toBe('mcp_jsonrpc_version');
  });

  it('no method (a response is not for a client to POST), or one that is not a string or not a short ASCII name', () => {
    expect(reason('{"jsonrpc":"2.0","id":1,"result":{}}')).toBe('mcp_method_missing');
    expect(reason('{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"x"}}')).toBe('mcp_method_missing');
    for (const m of ['42', 'null', '["tools/call"]', '{"name":"tools/call"}'])
      expect(reason(`{"jsonrpc":"2.0","id":1,"method":${m}}`), m).toBe('mcp_method_missing');
    for (const m of ['', 'tools/call ', 'tools call', 'tööls/call', 'tools/call\\n', 'a'.repeat(129)]) {
      expect(reason(`{"jsonrpc":"2.0","id":1,"method":"${m}"}`), m).toBe('mcp_method_invalid');
    }
  });

  it('an id that is not a string or an integer (MCP: not null either)', () => {
    for (const id of ['null', '1.5', 'true', '{}', '[1]', '9007199254740993']) {
      expect(reason(`{"jsonrpc":"2.0","id":${id},"method":"tools/list"}`), id).toBe('mcp_id_invalid');
    }
  });

  it('params that are not an object', () => {
    for (const p of ['[]', '["get_weather"]', 'null', '"x"', '1']) {
      expect(reason(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${p}}`), p).toBe('mcp_params_invalid');
    }
  });

  it('a tools/call without a usable params.name', () => {
    for (const params of [
      '',
      ',"params":{}',
      ',"params":{"name":""}',
      ',"params":{"name":42}',
      ',"params":{"name":null}',
      ',"params":{"arguments":{"name":"x"}}',
    ]) {
      expect(reason(`{"jsonrpc":"2.0","id":1,"method":"tools/call"${params}}`), params).toBe('mcp_tool_name_missing');
    }
    for (const name of ['a'.repeat(513), 'get\\u0000weather', 'get\\nweather', 'x\\u0085y']) {
      expect(reason(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${name}"}}`), name).toBe(
        'mcp_tool_name_invalid',
      );
    }
    expect(reason(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${'a'.repeat(512)}"}}`)).toBe('ok');
  });

  it('reads own members only: a "__proto__" member is data, not a way to supply name or method', () => {
    expect(reason('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"name":"get_weather"}}}')).toBe(
      'mcp_tool_name_missing',
    );
    expect(reason('{"__proto__":{"jsonrpc":"2.0","method":"tools/list"},"id":1}')).toBe('mcp_jsonrpc_version');
    expect(reason('{"jsonrpc":"2.0","id":1,"__proto__":{"method":"tools/list"}}')).toBe('mcp_method_missing');
  });
});

describe('a member named twice is refused: parsers disagree on which one wins', () => {
  it('top-level method, params.name, id, with or without escapes in the name', () => {
    expect(reason('{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}')).toBe(
      'mcp_duplicate_member',
    );
    expect(
      reason('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","name":"delete_all"}}'),
    ).toBe('mcp_duplicate_member');
    expect(
      reason(
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","na\\u006de":"delete_all"}}',
      ),
    ).toBe('mcp_duplicate_member');
    expect(reason('{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}')).toBe('mcp_duplicate_member');
    expect(
      reason('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":{"b":1,"b":2}}}}'),
    ).toBe('mcp_duplicate_member');
  });

  it('the same name in different objects, and look-alikes inside strings, are fine', () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'run',
        arguments: {
          name: 'n',
          nested: { name: 'again' },
          list: [{ name: 1 }, { name: 2 }],
          text: '{"name":1,"name":2}',
          q: 'say \\"hi\\", "x":',
        },
      },
    });
    expect(reason(body)).toBe('ok');
    expect(hasDuplicateMember('{"a":"\\\\","a":1}')).toBe(true);
    expect(hasDuplicateMember('{"a":"\\\\\\"","b":{"a":[{},{"a":1}]}}')).toBe(false);
    expect(hasDuplicateMember('[{"a":1},{"a":1}]')).toBe(false);
    expect(hasDuplicateMember('{"":1,"":2}')).toBe(true);
  });
});

describe('bodies Envoy cut, did not send, or sent in a form that cannot be read as sent', () => {
  it('truncated by max_request_bytes (allow_partial_message): Envoy says so, or the length shows it', () => {
    const cut = TOOLS_CALL.slice(0, 40);
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'x-envoy-auth-partial-body': 'true' }), body: cut })).toBe(
      'mcp_body_truncated',
    );
    // Even when the part that came is valid JSON on its own.
    expect(
      reason({ headers: envoyHeaders(TOOLS_CALL, { 'x-envoy-auth-partial-body': 'true' }), body: TOOLS_LIST }),
    ).toBe('mcp_body_truncated');
    expect(
      reason({
        headers: { 'content-length': String(TOOLS_CALL.length), 'x-envoy-auth-partial-body': 'false' },
        body: cut,
      }),
    ).toBe('mcp_body_truncated');
    // No content-length (HTTP/2, chunked): only Envoy's header tells, and the part that came parses.
    expect(reason({ headers: { 'x-envoy-auth-partial-body': 'true' }, body: TOOLS_LIST })).toBe('mcp_body_truncated');
  });

  it('a content-length that does not match or is not a number', () => {
    expect(reason({ headers: { 'content-length': '10' }, body: TOOLS_CALL })).toBe('mcp_body_length_mismatch');
    for (const cl of ['-1', '1e3', ' 12', 'abc', '1234567890123456'])
      expect(reason({ headers: { 'content-length': cl }, body: TOOLS_CALL }), cl).toBe('mcp_body_length_mismatch');
  });

  it('a POST with no body at all; one whose declared body Envoy did not send (with_request_body is off)', () => {
    expect(reason({ headers: {} })).toBe('mcp_body_missing');
    expect(reason({ headers: { 'content-length': '0' }, body: '' })).toBe('mcp_body_missing');
    expect(reason({ headers: { 'content-length': '0' }, rawBody: new Uint8Array() })).toBe('mcp_body_missing');
    expect(reason({ headers: { 'content-length': String(TOOLS_CALL.length) } })).toBe('mcp_body_not_buffered');
  });

  it('oversized: more than max_body_bytes', () => {
    const padded = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'upload', arguments: { data: 'x'.repeat(2000) } },
    });
    expect(reason(padded, 2000)).toBe('mcp_body_too_large');
    expect(reason(padded, Buffer.byteLength(padded))).toBe('ok');
  });

  it('raw_body bytes that are not UTF-8: refused, not read with replacement characters', () => {
    const cases = [
      [0xff], // never valid
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // an encoded surrogate
      [0xe2, 0x82], // cut in the middle of a character
    ];
    for (const bad of cases) {
      const prefix = new TextEncoder().encode('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_');
      const suffix = new TextEncoder().encode('"}}');
      const bytes = new Uint8Array([...prefix, ...bad, ...suffix]);
      expect(reason({ headers: envoyHeaders(bytes), rawBody: bytes }), String(bad)).toBe('mcp_body_not_utf8');
      expect(reason({ headers: envoyHeaders(bytes), body: bytes }), String(bad)).toBe('mcp_body_not_utf8');
    }
    // A UTF-8 byte order mark is not stripped: JSON text has none (RFC 8259 §8.1).
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(TOOLS_LIST)]);
    expect(reason({ headers: envoyHeaders(bom), rawBody: bom })).toBe('mcp_body_not_json');
  });

  it('body and raw_body both set; a content-encoded body', () => {
    expect(reason({ headers: {}, body: TOOLS_LIST, rawBody: new TextEncoder().encode(TOOLS_CALL) })).toBe(
      'mcp_body_ambiguous',
    );
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'content-encoding': 'gzip' }), body: TOOLS_CALL })).toBe(
      'mcp_body_encoded',
    );
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'content-encoding': 'identity' }), body: TOOLS_CALL })).toBe(
      'ok',
    );
  });
});

describe('Mcp-Method and Mcp-Name headers (MCP 2026-07-28) must agree with the body', () => {
  const v = { 'mcp-protocol-version': '2026-07-28' };

  it('matching headers pass; absent ones (earlier revisions) too', () => {
    expect(
      reason({
        headers: envoyHeaders(TOOLS_CALL, { ...v, 'mcp-method': 'tools/call', 'mcp-name': 'get_weather' }),
        body: TOOLS_CALL,
      }),
    ).toBe('ok');
    expect(
      reason({
        headers: envoyHeaders(RESOURCES_READ, {
          ...v,
          'mcp-method': 'resources/read',
          'mcp-name': 'file:///projects/myapp/config.json',
        }),
        body: RESOURCES_READ,
      }),
    ).toBe('ok');
    expect(reason({ headers: envoyHeaders(TOOLS_LIST, { ...v, 'mcp-method': 'tools/list' }), body: TOOLS_LIST })).toBe(
      'ok',
    );
    expect(reason(TOOLS_CALL)).toBe('ok');
  });

  it('a header saying another method or tool than the body is 400 (mcp_header_mismatch)', () => {
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'tools/list' }), body: TOOLS_CALL })).toBe(
      'mcp_header_mismatch',
    );
    expect(
      reason({
        headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'tools/call', 'mcp-name': 'delete_all' }),
        body: TOOLS_CALL,
      }),
    ).toBe('mcp_header_mismatch');
    expect(
      reason({
        headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'Tools/Call', 'mcp-name': 'get_weather' }),
        body: TOOLS_CALL,
      }),
    ).toBe('mcp_header_mismatch');
    // A repeated header, as Envoy merges it.
    expect(
      reason({
        headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'tools/list,tools/call', 'mcp-name': 'get_weather' }),
        body: TOOLS_CALL,
      }),
    ).toBe('mcp_header_mismatch');
    expect(
      reason({ headers: envoyHeaders(RESOURCES_READ, { 'mcp-name': 'file:///etc/passwd' }), body: RESOURCES_READ }),
    ).toBe('mcp_header_mismatch');
  });

  it('Mcp-Name in the base64 form is decoded before comparing; a malformed one is 400 (mcp_header_invalid)', () => {
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"météo"}}';
    const b64 = Buffer.from('météo').toString('base64');
    expect(
      reason({ headers: envoyHeaders(body, { 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${b64}?=` }), body }),
    ).toBe('ok');
    expect(
      reason({
        headers: envoyHeaders(body, {
          'mcp-method': 'tools/call',
          'mcp-name': `=?base64?${Buffer.from('meteo').toString('base64')}?=`,
        }),
        body,
      }),
    ).toBe('mcp_header_mismatch');
    for (const bad of [
      '=?base64?bcOpdMOpbw?=',
      '=?base64?!!!!?=',
      `=?base64?${Buffer.from([0xff, 0xfe]).toString('base64')}?=`,
      'météo',
      'a\u0001b',
    ]) {
      expect(reason({ headers: envoyHeaders(body, { 'mcp-method': 'tools/call', 'mcp-name': bad }), body }), bad).toBe(
        'mcp_header_invalid',
      );
    }
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'tools call' }), body: TOOLS_CALL })).toBe(
      'mcp_header_invalid',
    );
  });

  it('Mcp-Method without the Mcp-Name a tools/call needs is 400 (mcp_header_missing); Mcp-Name on tools/list is not compared', () => {
    expect(reason({ headers: envoyHeaders(TOOLS_CALL, { 'mcp-method': 'tools/call' }), body: TOOLS_CALL })).toBe(
      'mcp_header_missing',
    );
    expect(
      reason({
        headers: envoyHeaders(TOOLS_LIST, { 'mcp-method': 'tools/list', 'mcp-name': 'anything' }),
        body: TOOLS_LIST,
      }),
    ).toBe('ok');
  });
});

describe('descriptions sent to clients', () => {
  it("fit RFC 6750 error_description and say nothing about the request; all 400 but Envoy's configuration (503)", () => {
    for (const [r, { status, description }] of Object.entries(MCP_BODY_REASONS)) {
      expect(isErrorDescription(description), r).toBe(true);
      expect(description.length, r).toBeLessThanOrEqual(80);
      expect(status, r).toBe(r === 'mcp_body_not_buffered' ? 503 : 400);
    }
  });
});

describe('per-tool scopes: glob patterns, precedence', () => {
  const tools = {
    '*': ['mcp:use'],
    'delete_*': ['admin'],
    '*_users': ['users:write'],
    delete_users: ['superadmin'],
    'get_?': ['short'],
  };
  const scopesFor = compileToolScopes(tools, { caseSensitive: false });

  it('every matching pattern applies: the union, exact names first, then patterns in config order', () => {
    expect(scopesFor('delete_users')).toEqual({
      scopes: ['superadmin', 'mcp:use', 'admin', 'users:write'],
      listed: true,
      pattern: 'delete_users',
    });
    expect(scopesFor('delete_repo')).toEqual({ scopes: ['mcp:use', 'admin'], listed: true, pattern: '*' });
    expect(scopesFor('list_users')).toEqual({ scopes: ['mcp:use', 'users:write'], listed: true, pattern: '*' });
    expect(scopesFor('get_weather')).toEqual({ scopes: ['mcp:use'], listed: true, pattern: '*' });
  });

  it('a narrower pattern cannot lower what a broader one requires', () => {
    const s = compileToolScopes({ 'delete_*': ['admin'], delete_temp_files: [] }, { caseSensitive: false });
    expect(s('delete_temp_files').scopes).toEqual(['admin']);
  });

  it('no pattern matched: not listed, no scopes (unlisted_tools decides)', () => {
    const s = compileToolScopes({ 'delete_*': ['admin'] }, { caseSensitive: false });
    expect(s('get_weather')).toEqual({ scopes: [], listed: false });
    expect(compileToolScopes({}, { caseSensitive: false })('x')).toEqual({ scopes: [], listed: false });
  });

  it('case: any case by default (a server that folds case cannot be reached past a pattern); exact with tool_names_case_sensitive', () => {
    expect(scopesFor('Delete_Users').scopes).toEqual(['superadmin', 'mcp:use', 'admin', 'users:write']);
    expect(scopesFor('DELETE_REPO').scopes).toEqual(['mcp:use', 'admin']);
    const exact = compileToolScopes({ 'delete_*': ['admin'], Run: ['run'] }, { caseSensitive: true });
    expect(exact('Delete_repo')).toEqual({ scopes: [], listed: false });
    expect(exact('run')).toEqual({ scopes: [], listed: false });
    expect(exact('Run').scopes).toEqual(['run']);
  });

  it('"*" matches any run, none included; "?" exactly one character (a code point, not half of one)', () => {
    const s = compileToolScopes({ 'a*': ['a'], '*z': ['z'], 'x?y': ['q'], 'm*n*o': ['mno'] }, { caseSensitive: true });
    expect(s('a').scopes).toEqual(['a']);
    expect(s('z').scopes).toEqual(['z']);
    expect(s('x🙂y').scopes).toEqual(['q']);
    expect(s('xy').listed).toBe(false);
    expect(s('x12y').listed).toBe(false);
    expect(s('mno').scopes).toEqual(['mno']);
    expect(s('m-n-n-o').scopes).toEqual(['mno']);
    expect(s('m-o-n').listed).toBe(false);
    // Regex metacharacters in a pattern are literal.
    const meta = compileToolScopes({ 'a.b(c)+[d]$': ['lit'] }, { caseSensitive: true });
    expect(meta('a.b(c)+[d]$').scopes).toEqual(['lit']);
    expect(meta('aXb(c)+[d]$').listed).toBe(false);
  });

  it('a pathological pattern against a long name stays fast (no backtracking blow-up)', () => {
    const s = compileToolScopes({ '*a*a*a*a*a*a*a*a*b': ['x'] }, { caseSensitive: true });
    const started = performance.now();
    expect(s('a'.repeat(512)).listed).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('the schema reads routes[].mcp with its defaults and refuses bad scopes and patterns', () => {
    expect(mcpRouteSchema.parse({ tools: tools })).toEqual({
      tools,
      unlisted_tools: 'route_scopes',
      tool_names_case_sensitive: false,
      max_body_bytes: 1048576,
    });
    expect(mcpRouteSchema.safeParse({ tools: { 'a*': ['two words'] } }).success).toBe(false);
    expect(mcpRouteSchema.safeParse({ tools: { 'a\nb': ['x'] } }).success).toBe(false);
    expect(mcpRouteSchema.safeParse({ tools: { '': ['x'] } }).success).toBe(false);
    expect(mcpRouteSchema.safeParse({ max_body_bytes: 8 * 1024 * 1024 }).success).toBe(false);
    expect(mcpRouteSchema.safeParse({ unlisted_tools: 'allow' }).success).toBe(false);
  });

  it("the challenge names every scope the operation needs: the route's and the tool's, once each", () => {
    expect(operationScopes(['mcp:use'], scopesFor('delete_users').scopes)).toEqual([
      'mcp:use',
      'superadmin',
      'admin',
      'users:write',
    ]);
    expect(operationScopes([], [])).toEqual([]);
  });
});

describe("evaluateMcpPost: a route's routes[].mcp applied to a POST", () => {
  const call = (name: string) =>
    JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: {} } });
  const post = (body: string) => ({ headers: envoyHeaders(body), body });
  const listed = mcpRoutePolicy(
    mcpRouteSchema.parse({ tools: { 'delete_*': ['files:delete'], 'admin.*': ['mcp:admin'] }, max_body_bytes: 2048 }),
  );
  const strict = mcpRoutePolicy(mcpRouteSchema.parse({ tools: { 'get_*': [] }, unlisted_tools: 'deny' }));

  it('a listed tool: its scopes and the pattern that listed it', () => {
    expect(evaluateMcpPost(listed, post(call('delete_repo')))).toEqual({
      kind: 'ok',
      message: { method: 'tools/call', toolName: 'delete_repo', isNotification: false },
      toolScopes: ['files:delete'],
      pattern: 'delete_*',
    });
    expect(evaluateMcpPost(strict, post(call('get_weather')))).toMatchObject({
      kind: 'ok',
      toolScopes: [],
      pattern: 'get_*',
    });
  });

  it('tools/list and notifications: no tool scopes, whatever unlisted_tools says', () => {
    expect(evaluateMcpPost(strict, post(TOOLS_LIST))).toEqual({
      kind: 'ok',
      message: { method: 'tools/list', toolName: undefined, isNotification: false },
      toolScopes: [],
    });
    expect(evaluateMcpPost(strict, post(INITIALIZED))).toMatchObject({ kind: 'ok', toolScopes: [] });
  });

  it("an unlisted tool: the route's scopes suffice, or 403 with unlisted_tools: deny", () => {
    expect(evaluateMcpPost(listed, post(call('get_weather')))).toMatchObject({
      kind: 'ok',
      toolScopes: [],
      pattern: undefined,
    });
    expect(evaluateMcpPost(strict, post(call('delete_repo')))).toEqual({
      kind: 'tool_not_listed',
      message: { method: 'tools/call', toolName: 'delete_repo', isNotification: false },
    });
  });

  it("an unreadable body: refused with reason, status and description; the route's max_body_bytes applies", () => {
    expect(evaluateMcpPost(listed, post(`[${call('delete_repo')}]`))).toEqual({
      kind: 'refused',
      reason: 'mcp_batch_not_supported',
      status: 400,
      description: 'JSON-RPC batches are not supported: send one message per POST',
    });
    expect(evaluateMcpPost(listed, post(call('x'.repeat(2100))))).toMatchObject({
      kind: 'refused',
      reason: 'mcp_body_too_large',
      status: 400,
    });
    expect(evaluateMcpPost(listed, { headers: { 'content-length': '100' } })).toMatchObject({
      kind: 'refused',
      reason: 'mcp_body_not_buffered',
      status: 503,
    });
  });
});

describe('toolNameForLog', () => {
  it('keeps a name of the recommended form, bounds and cleans the rest', () => {
    expect(toolNameForLog('admin.tools.list')).toBe('admin.tools.list');
    expect(toolNameForLog('météo')).toBe('m?t?o');
    expect(toolNameForLog('x'.repeat(300))).toBe(`${'x'.repeat(128)}...`);
    expect(toolNameForLog('a b\u2028c')).toBe('a b?c');
  });
});
