// The identity provider of docs/mcp.md's walkthrough: the same oidc-provider the tests and the bench
// use (test/support/idp.ts), on http://127.0.0.1:9400, issuing JWT access tokens for the MCP resource
// of examples/mcp.yaml with the client_credentials grant. DEMO ONLY: plain http, published secrets.
import { DEFAULT_CLIENT, startIdp } from '../test/support/idp.ts';

const port = Number(process.env.DEMO_IDP_PORT ?? 9400);
const resource = 'https://mcp.example.com/mcp';
const idp = await startIdp({
  port,
  resources: {
    [resource]: { scope: 'mcp:use files:delete mcp:admin', format: 'jwt', ttl: 3600 },
    // Another resource: its tokens are refused on the MCP routes (RFC 8707 audience).
    'https://api.example.com': { scope: 'mcp:use files:delete mcp:admin', format: 'jwt', ttl: 3600 },
  },
});
console.log(`identity provider ${idp.issuer} (DEMO ONLY)
  token endpoint  ${idp.tokenEndpoint}
  client          ${DEFAULT_CLIENT.client_id} / ${DEFAULT_CLIENT.client_secret}
  a token:        curl -s -u ${DEFAULT_CLIENT.client_id}:${DEFAULT_CLIENT.client_secret} -d grant_type=client_credentials \\
                    -d resource=${resource} -d scope=mcp:use ${idp.tokenEndpoint}
Ctrl-C stops it.`);
const stop = () => void idp.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
