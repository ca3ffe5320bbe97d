// protected_resources, routes[].mcp and routes[].step_up in the config: accepted when consistent,
// and every mistake named by its config path.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/policy/load.ts';

const JWT = `
credentials:
  jwt:
    - issuer: https://idp.example.com
      audiences: [https://mcp.example.com/mcp]
      jwks_uri: https://idp.example.com/jwks
`;

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'f', {});
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

describe('protected resources in the config', () => {
  it('accepts a resource with an MCP route and a step-up route', () => {
    const c = parseConfig(
      `${JWT}
routes:
  - name: mcp
    match: { path: /mcp }
    auth: [jwt]
    scopes: [mcp:read]
    mcp: { tools: { "delete_*": [mcp:admin] } }
  - name: admin
    match: { path_prefix: /admin }
    auth: [jwt]
    step_up: { acr_values: [phr], max_age_seconds: 300 }
protected_resources:
  - resource: https://mcp.example.com/mcp
    authorization_servers: [https://idp.example.com]
    routes: [mcp, admin]
`,
      'f',
      {},
    );
    expect(c.protected_resources[0].routes).toEqual(['mcp', 'admin']);
    expect(c.routes[0].mcp?.tools).toEqual({ 'delete_*': ['mcp:admin'] });
    expect(c.routes[0].mcp?.max_body_bytes).toBe(1024 * 1024);
    expect(c.routes[1].step_up?.clock_skew_seconds).toBe(60);
  });

  it('names the path of a route a resource names that does not exist', () => {
    expect(
      problems(`${JWT}
routes: [{ name: mcp, match: { path: /mcp }, auth: [jwt] }]
protected_resources:
  - { resource: https://mcp.example.com/mcp, authorization_servers: [https://idp.example.com], routes: [mcp, nope] }
`),
    ).toEqual(['protected_resources[0].routes[1]: no route named "nope" (routes[].name)']);
  });

  it('refuses a public route in a resource, API keys on a resource route, unquotable scopes, signing without keys', () => {
    const p = problems(`${JWT}
  api_key: { store: { type: memory } }
routes:
  - { name: open, public: true, match: { path: /open } }
  - { name: keyed, match: { path: /keyed }, auth: [api-key, jwt], scopes: ['a"b'] }
  - { name: stepped, match: { path: /s }, auth: [api-key], step_up: { max_age_seconds: 60 } }
  - { name: pub-mcp, public: true, match: { path: /m }, mcp: {} }
protected_resources:
  - resource: https://mcp.example.com/mcp
    authorization_servers: [https://idp.example.com]
    routes: [open, keyed]
    signed_metadata: {}
`);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^protected_resources\[0\]\.routes\[0\]: route "open" is public/),
        expect.stringMatching(/^protected_resources\[0\]\.routes\[1\]: route "keyed" accepts API keys/),
        expect.stringMatching(/^protected_resources\[0\]\.signed_metadata: needs a signing key/),
        expect.stringMatching(/^routes\[1\]\.scopes\[0\]: a scope of a protected resource/),
        expect.stringMatching(/^routes\[2\]\.step_up: API keys carry no acr/),
        expect.stringMatching(/^routes\[3\]\.mcp: a public route/),
      ]),
    );
  });

  it('an MCP body limit the gRPC message limit cannot carry is refused', () => {
    const yaml = (grpc: number) => `${JWT}
server: { grpc: { max_receive_message_bytes: ${grpc} } }
routes: [{ name: mcp, match: { path: /mcp }, auth: [jwt], mcp: { max_body_bytes: 4194304 } }]
`;
    expect(problems(yaml(4194304))).toEqual([
      'routes[0].mcp.max_body_bytes: Envoy sends the body inside the Check message, which server.grpc.max_receive_message_bytes (4194304) bounds: keep this at most 4128768, or raise that limit',
    ]);
    expect(problems(yaml(8388608))).toEqual([]);
  });

  it('names bad values inside the sections', () => {
    const p = problems(`${JWT}
routes:
  - { name: mcp, match: { path: /mcp }, auth: [jwt], mcp: { max_body_bytes: 10, tools: { x: ['a b'] } }, step_up: {} }
protected_resources:
  - { resource: "http://mcp.example.com/mcp?x=1", authorization_servers: [https://idp.example.com], routes: [mcp] }
`);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^routes\[0\]\.mcp\.max_body_bytes: /),
        expect.stringMatching(/^routes\[0\]\.mcp\.tools\.x\[0\]|^routes\[0\]\.mcp\.tools\.x\.0/),
        expect.stringMatching(/^routes\[0\]\.step_up: set acr_values, max_age_seconds or both/),
        expect.stringMatching(/^protected_resources\[0\]\.resource: must be an https URL/),
      ]),
    );
  });
});
