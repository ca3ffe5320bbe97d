// Development identity provider for docker-compose: the certified `oidc-provider` package issuing
// RFC 9068 JWT access tokens (typ at+jwt) with the client_credentials grant. NOT for production:
// keys are generated at start (lost on restart), the client secret is public, state is in memory.
//
//   curl -s -u demo-client:demo-client-secret -d grant_type=client_credentials \
//        -d scope=orders:read http://localhost:3000/token
//
// Env: IDP_ISSUER (default http://<host>:<port> as bound), IDP_HOST (0.0.0.0), IDP_PORT (3000; 0 = any).
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const AUDIENCE = process.env.IDP_AUDIENCE ?? 'https://api.example.com';
const SCOPES = ['orders:read', 'orders:write'];

async function signingKey(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return {
    ...(await exportJWK(privateKey)),
    alg,
    use: 'sig',
    kid: `dev-${alg.toLowerCase()}-${Date.now().toString(36)}`,
  };
}

let handler;
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve) =>
  server.listen(Number(process.env.IDP_PORT ?? 3000), process.env.IDP_HOST ?? '0.0.0.0', resolve),
);
const { port } = server.address();
const issuer = process.env.IDP_ISSUER ?? `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'demo-client',
      client_secret: 'demo-client-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES.join(' '),
      // The only key is ES256 (the library's default for ID tokens is RS256).
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [await signingKey('ES256')] },
  scopes: SCOPES,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Tokens are for the API unless another resource is asked for, so curl needs no `resource`.
      defaultResource: async () => AUDIENCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: SCOPES.join(' '),
        audience: AUDIENCE,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  cookies: { keys: ['dev-only-cookie-key-not-secret'] },
});
handler = provider.callback();
console.log(
  JSON.stringify({
    msg: 'dev identity provider listening',
    issuer,
    port,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
  }),
);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
