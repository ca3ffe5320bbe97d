// The configuration schema: one zod schema, the source of both validation (with path-precise
// errors) and the published JSON Schema (schema/portcullis.schema.json, `npm run schema`).
import { z } from 'zod';

const address = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:9191');
const seconds = (def: number, max = 30 * 24 * 3600) => z.number().int().min(0).max(max).default(def);
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
  .transform((s) => s.toLowerCase());

export const IDENTITY_FIELDS = ['subject', 'client_id', 'scopes', 'method', 'key_id', 'issuer', 'route'] as const;
export type IdentityField = (typeof IDENTITY_FIELDS)[number];

const tls = z
  .object({
    cert_file: z.string().describe('PEM certificate chain served by the gRPC listener'),
    key_file: z.string().describe('PEM private key for cert_file'),
    client_ca_file: z
      .string()
      .optional()
      .describe('PEM CA bundle; when set, clients (Envoy) must present a certificate it signed (mTLS)'),
  })
  .strict();

const server = z
  .object({
    grpc: z
      .object({
        address: address.default('0.0.0.0:9191').describe('ext_authz Check and grpc.health.v1 listener'),
        tls: tls.optional().describe('TLS for the gRPC listener; plaintext h2c without it'),
        max_receive_message_bytes: z.number().int().min(1024).default(4 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    http: z
      .object({ address: address.default('0.0.0.0:9192').describe('ops listener: /metrics /healthz /readyz') })
      .strict()
      .prefault({}),
    shutdown_grace_seconds: seconds(10, 300).describe('SIGTERM: time given to in-flight Checks before exit'),
  })
  .strict()
  .prefault({});

const redis = z
  .object({
    url: z.string().default('redis://127.0.0.1:6379').describe('redis:// or rediss:// URL (single node)'),
    key_prefix: z.string().default('portcullis:'),
    mode: z.enum(['single', 'sentinel', 'cluster']).default('single'),
    sentinels: z.array(z.object({ host: z.string(), port: z.number().int() }).strict()).optional(),
    sentinel_name: z.string().optional().describe('master group name, for mode: sentinel'),
    nodes: z.array(z.string()).optional().describe('host:port seeds, for mode: cluster'),
    command_timeout_ms: z.number().int().min(1).default(100),
  })
  .strict();

const headers = z
  .object({
    strip: z.array(headerName).default(['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method']).describe(
      'client-supplied headers that never reach the upstream (matched case-insensitively, "_" same as "-")',
    ),
    strip_prefixes: z.array(headerName).default(['x-auth-']).describe('header name prefixes stripped the same way'),
    set: z
      .record(headerName, z.enum(IDENTITY_FIELDS))
      .default({ 'x-user-id': 'subject', 'x-client-id': 'client_id', 'x-scopes': 'scopes', 'x-auth-method': 'method' })
      .describe('trusted headers set on allowed requests: header name -> identity field'),
    forward_credentials: z
      .boolean()
      .default(false)
      .describe('false: the Authorization / API-key header is removed before the upstream'),
  })
  .strict()
  .prefault({});

const keyStore = z.discriminatedUnion('type', [
  z.object({ type: z.literal('file'), path: z.string().default('keys.yaml').describe('relative to the config file') }).strict(),
  z.object({ type: z.literal('memory') }).strict(),
  z.object({ type: z.literal('redis'), resync_seconds: seconds(30, 3600) }).strict(),
]);

const apiKey = z
  .object({
    headers: z.array(headerName).default(['x-api-key']).describe('headers carrying the key; also `Authorization: ApiKey <key>`'),
    query_param: z.string().nullable().default(null).describe('off unless named: keys in URLs leak into logs'),
    prefix: z
      .string()
      .regex(/^[a-z][a-z0-9]{1,15}$/, 'lowercase letters and digits, 2-16 chars')
      .default('pcl')
      .describe('recognizable key prefix: keys look like pcl_<random><checksum>'),
    store: keyStore.default({ type: 'file', path: 'keys.yaml' }),
  })
  .strict();

const jwtIssuer = z
  .object({
    issuer: z.string().min(1).describe('exact `iss` value'),
    audiences: z.array(z.string().min(1)).min(1).describe('`aud` must contain one of these'),
    jwks_uri: z.string().url().optional(),
    discovery: z.boolean().optional().describe('read jwks_uri from <issuer>/.well-known/openid-configuration'),
    jwks_file: z.string().optional().describe('a local JWKS file (relative to the config file)'),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256']),
    clock_skew_seconds: seconds(60, 600),
    token_types: z.array(z.string()).min(1).default(['at+jwt']).describe('allowed `typ` values (RFC 9068: at+jwt)'),
    max_lifetime_seconds: seconds(86400).describe('exp - iat may not exceed this'),
    scope_claim: z.enum(['scope', 'scp']).default('scope'),
    subject_claim: z.string().default('sub'),
    client_id_claims: z.array(z.string()).default(['client_id', 'azp']),
    jwks_refresh_seconds: seconds(300, 86400),
    jwks_cooldown_seconds: seconds(30, 3600).describe('unknown kid: at most one refetch per cooldown'),
    fetch_timeout_ms: z.number().int().min(10).max(60000).default(5000),
  })
  .strict()
  .refine((j) => [j.jwks_uri, j.discovery, j.jwks_file].filter((x) => x !== undefined && x !== false).length === 1, {
    message: 'set exactly one of jwks_uri, discovery: true, jwks_file',
  });

const introspection = z
  .object({
    endpoint: z.string().url(),
    client_id: z.string().min(1),
    client_secret: z.string().min(1).describe('use ${env:NAME}; never commit it'),
    auth_method: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
    timeout_ms: z.number().int().min(10).max(10000).default(150).describe('stay inside Envoy\'s 200 ms Check deadline'),
    issuer: z.string().optional().describe('when set, an answer with another `iss` is rejected'),
    audiences: z.array(z.string()).optional().describe('when set, `aud` must contain one'),
    max_concurrency: z.number().int().min(1).default(64),
    max_per_second: z.number().int().min(1).default(500),
    cache: z
      .object({ max_ttl_seconds: seconds(60), negative_ttl_seconds: seconds(5, 3600), max_entries: z.number().int().min(1).default(100000) })
      .strict()
      .prefault({}),
    phantom_token: z
      .object({
        enabled: z.boolean().default(false),
        issuer: z.string().default('https://portcullis.internal'),
        audience: z.string().default('internal'),
        ttl_seconds: seconds(60, 3600),
        for_api_keys: z.boolean().default(false),
        algorithm: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256'),
        keys: z
          .array(z.object({ kid: z.string(), private_key_file: z.string() }).strict())
          .optional()
          .describe('signing keys, newest first; the first signs, all are published'),
      })
      .strict()
      .optional(),
  })
  .strict();

const rateLimit = z
  .object({
    name: z.string().min(1),
    key: z.enum(['client_id', 'key_id', 'source_ip', 'subject']).default('client_id'),
    limit: z.number().int().min(1),
    window_seconds: z.number().int().min(1).max(30 * 24 * 3600),
    on_redis_error: z.enum(['allow', 'deny']).default('allow'),
  })
  .strict();

const route = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, _ . : -'),
    match: z
      .object({
        methods: z.array(z.string().regex(/^[A-Z]+$/, 'uppercase HTTP method')).optional(),
        path_prefix: z.string().startsWith('/').optional().describe('whole segments: /v1/orders matches /v1/orders/7, not /v1/ordersX'),
        path: z.string().startsWith('/').optional().describe('exact path, without query'),
        host: z.string().optional().describe('exact host (port and case ignored)'),
      })
      .strict()
      .prefault({}),
    public: z.boolean().default(false),
    auth: z.array(z.enum(['api-key', 'jwt', 'oauth2'])).optional().describe('credential kinds accepted'),
    scopes: z.array(z.string().min(1)).default([]).describe('all required'),
    rate_limit: z.string().optional().describe('name of a rate_limits entry'),
  })
  .strict();

export const configSchema = z
  .object({
    server,
    redis: redis.optional().describe('shared state; memory/file stores without it'),
    realm: z.string().regex(/^[^"\\]*$/, 'no quotes or backslashes').default('portcullis').describe('WWW-Authenticate realm'),
    source_ip_header: headerName
      .optional()
      .describe('take the client IP from this header (e.g. x-envoy-external-address) instead of the TCP peer'),
    logging: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') })
      .strict()
      .prefault({}),
    headers,
    credentials: z
      .object({
        api_key: apiKey.optional(),
        jwt: z.array(jwtIssuer).optional(),
        introspection: introspection.optional(),
        max_credential_bytes: z.number().int().min(256).max(65536).default(8192),
      })
      .strict()
      .prefault({}),
    rate_limits: z.array(rateLimit).default([]),
    routes: z.array(route).default([]).describe('first match wins'),
    default: z.literal('deny').default('deny').describe('no route matched: 403'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    const limits = new Set(c.rate_limits.map((r) => r.name));
    c.routes.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `duplicate route name "${r.name}"` });
      names.add(r.name);
      if (r.public && (r.auth || r.scopes.length || r.rate_limit)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i], message: 'a public route takes no auth, scopes or rate_limit' });
      }
      if (!r.public && !r.auth?.length) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'auth'], message: 'a protected route must list at least one credential kind (or set public: true)' });
      }
      for (const [j, kind] of (r.auth ?? []).entries()) {
        const configured =
          kind === 'api-key' ? !!c.credentials.api_key : kind === 'jwt' ? !!c.credentials.jwt?.length : !!c.credentials.introspection;
        if (!configured) {
          const section = kind === 'api-key' ? 'credentials.api_key' : kind === 'jwt' ? 'credentials.jwt' : 'credentials.introspection';
          ctx.addIssue({ code: 'custom', path: ['routes', i, 'auth', j], message: `"${kind}" needs ${section} to be configured` });
        }
      }
      if (r.rate_limit && !limits.has(r.rate_limit)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'rate_limit'], message: `no rate_limits entry named "${r.rate_limit}"` });
      }
    });
    if (c.credentials.api_key?.store.type === 'redis' && !c.redis) {
      ctx.addIssue({ code: 'custom', path: ['credentials', 'api_key', 'store', 'type'], message: 'store type redis needs a top-level redis section' });
    }
    const set = c.headers.set;
    for (const h of Object.keys(set)) {
      if (h === 'authorization' || h === 'host' || h.startsWith(':')) {
        ctx.addIssue({ code: 'custom', path: ['headers', 'set', h], message: `"${h}" cannot be an identity header` });
      }
    }
  });

export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type JwtIssuerConfig = NonNullable<Config['credentials']['jwt']>[number];
export type IntrospectionConfig = NonNullable<Config['credentials']['introspection']>;
export type RateLimitConfig = Config['rate_limits'][number];
export type ApiKeyConfig = NonNullable<Config['credentials']['api_key']>;
export type RedisConfig = NonNullable<Config['redis']>;
