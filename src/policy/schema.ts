// The configuration schema: one zod schema, the source of both validation (with path-precise
// errors) and the published JSON Schema (schema/portcullis.schema.json, `npm run schema`).
import { isIP } from 'node:net';
import { z } from 'zod';
import { normalizePath } from '../core/paths.ts';
import { CREDENTIAL_KIND_NAMES, CREDENTIAL_KINDS } from '../core/types.ts';
import { tracingSchema } from '../telemetry/config.ts';
import { isClaimReference, parseClaimReference } from './claims.ts';
import { compileCondition } from './conditions/index.ts';
import { PolicyConfigError } from './config-error.ts';
import { compileHostPattern } from './host-pattern.ts';
import { compilePathTemplate } from './path-template.ts';
import { isChallengeToken } from '../resources/challenge.ts';
import {
  mcpRouteSchema,
  protectedResourcesSchema,
  resourceConfigIssues,
  stepUpSchema,
  type ProtectedResourceConfig,
} from '../resources/schema.ts';
import { clientCertificate, dpop, mtls, senderConstraint } from './pop-schema.ts';

const address = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:9191');
const seconds = (def: number, max = 30 * 24 * 3600) => z.number().int().min(0).max(max).default(def);
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
  .toLowerCase();

export const IDENTITY_FIELDS = ['subject', 'client_id', 'scopes', 'method', 'key_id', 'issuer', 'route'] as const;
export type IdentityField = (typeof IDENTITY_FIELDS)[number];

/** How an identity header treats a value outside the safe form (src/policy/headers.ts). */
export const UNSAFE_VALUE_CHOICES = ['reject', 'percent_encode'] as const;

// Where an identity header's value comes from: an identity field or a claim (`claims.<dotted.name>`),
// with the same per-header choices in the object form.
/** `claims.email`, `claims.realm_access.roles`, `claims["https://example.com/roles"]` (src/policy/claims.ts). */
const claimSource = z
  .string()
  .refine(isClaimReference, 'an identity field or claims.<name>')
  .superRefine((v, ctx) => {
    const problem = configProblem(() => parseClaimReference(v, 'claims'));
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('a claim of the identity: claims.<name>, dots for nested members (docs/policy.md)');
const identitySource = z.union([z.enum(IDENTITY_FIELDS), claimSource]);
const identityHeader = z.union([
  identitySource.describe('shorthand for { from: <field> } with the defaults'),
  z
    .object({
      from: identitySource.describe('identity field (or claims.<name>) the value comes from'),
      unsafe: z
        .enum(UNSAFE_VALUE_CHOICES)
        .default('reject')
        .describe(
          'a value outside the safe form (visible ASCII without " , ; \\, at most max_length): reject = deny 401 invalid_token (identity_value_unsafe); percent_encode = send every value of this header percent-encoded (UTF-8, RFC 8187 value-chars, only RFC 3986 unreserved characters left as they are), so the upstream decodes it back exactly',
        ),
      max_length: z
        .number()
        .int()
        .min(1)
        .max(8192)
        .optional()
        .describe(
          'longest value sent, after encoding (default 256; scopes 4096); longer: 401 invalid_token (identity_value_too_long)',
        ),
    })
    .strict(),
]);
export type IdentityHeaderConfig = z.output<typeof identityHeader>;

/** The detail of a PolicyConfigError thrown by `f` (a compiler of a policy value), else undefined. */
function configProblem(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof PolicyConfigError) return e.detail;
    throw e;
  }
}

const tls = z
  .object({
    cert_file: z
      .string()
      .describe(
        'PEM certificate chain served by the gRPC listener (relative to the config file); re-read on change or SIGHUP, no restart',
      ),
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
        max_receive_message_bytes: z
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 * 1024),
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

// A Sentinel or Cluster address is a host name or an IP address, never `user:password@host`: those
// addresses are printed in logs and /readyz, and credentials have options of their own.
const redisHost = z
  .string()
  .regex(
    /^(\[?[0-9a-fA-F:.]+\]?|[A-Za-z0-9._-]+)$/,
    'must be a host name or IP address (no user or password: use username / password / sentinel_password)',
  );

const redis = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss:// (TLS)')
      // ioredis parses the URL with WHATWG URL; one it cannot parse would fail at connect time
      // with an error carrying the whole URL, password included.
      .refine(
        (u) => URL.canParse(u),
        'is not a URL: percent-encode reserved characters in the password (e.g. / as %2F, # as %23)',
      )
      .default('redis://127.0.0.1:6379')
      .describe('mode single: redis:// or rediss:// (TLS) URL, e.g. redis://:${env:REDIS_PASSWORD}@redis:6379/0'),
    key_prefix: z
      .string()
      .regex(/^[^\s{}]{0,64}$/, 'at most 64 characters, no spaces or braces')
      .default('portcullis:')
      .describe(
        'every Redis key Portcullis writes starts with this; share one Redis between deployments by giving each its own',
      ),
    mode: z
      .enum(['single', 'sentinel', 'cluster'])
      .default('single')
      .describe('single node (url), Sentinel (sentinels + sentinel_name) or Cluster (nodes)'),
    sentinels: z
      .array(z.object({ host: redisHost, port: z.number().int().min(1).max(65535) }).strict())
      .min(1)
      .optional()
      .describe('mode sentinel: Sentinel addresses'),
    sentinel_name: z.string().optional().describe('mode sentinel: master group name'),
    nodes: z
      .array(
        z
          .string()
          .regex(
            /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/,
            'must be host:port, e.g. redis-0.redis:6379 (no user or password: use username / password)',
          ),
      )
      .min(1)
      .optional()
      .describe('mode cluster: host:port seed nodes'),
    username: z
      .string()
      .optional()
      .describe('mode sentinel / cluster: ACL user of the data nodes (single: put it in url)'),
    password: z
      .string()
      .optional()
      .describe('mode sentinel / cluster: password of the data nodes; use ${env:NAME} (single: put it in url)'),
    sentinel_password: z
      .string()
      .optional()
      .describe('mode sentinel: password of the Sentinels themselves, if they require one'),
    tls: z.boolean().default(false).describe('mode sentinel / cluster: TLS to the data nodes (single: use rediss://)'),
    command_timeout_ms: z
      .number()
      .int()
      .min(1)
      .max(10000)
      .default(100)
      .describe(
        "a command not answered within this fails (then: on_redis_error / 503); keep it inside Envoy's 200 ms Check deadline",
      ),
    connect_timeout_ms: z
      .number()
      .int()
      .min(100)
      .max(60000)
      .default(2000)
      .describe('TCP connect timeout; reconnects back off up to 1 s between attempts'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.mode === 'sentinel' && (!r.sentinels || !r.sentinel_name)) {
      ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'mode sentinel needs sentinels and sentinel_name' });
    }
    if (r.mode === 'cluster' && !r.nodes)
      ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'mode cluster needs nodes (host:port seeds)' });
  });

const headers = z
  .object({
    strip: z
      .array(headerName)
      .default(['x-user-id', 'x-client-id', 'x-scopes', 'x-auth-method'])
      .describe('client-supplied headers that never reach the upstream (matched case-insensitively, "_" same as "-")'),
    strip_prefixes: z.array(headerName).default(['x-auth-']).describe('header name prefixes stripped the same way'),
    set: z
      .record(headerName, identityHeader)
      .default({ 'x-user-id': 'subject', 'x-client-id': 'client_id', 'x-scopes': 'scopes', 'x-auth-method': 'method' })
      .describe(
        'trusted headers set on allowed requests: header name -> identity field or claims.<name> (docs/policy.md), or { from, unsafe, max_length }. Values reach the upstream only in a safe form (docs/security.md)',
      ),
    forward_credentials: z
      .boolean()
      .default(false)
      .describe('false: the Authorization / API-key header is removed before the upstream'),
  })
  .strict()
  .prefault({});

const keyStore = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('file'),
      path: z
        .string()
        .min(1)
        .default('keys.yaml')
        .describe(
          'relative to the config file. It must exist (a missing file is a config error, not an empty store): `portcullis keys init` creates an empty one',
        ),
      create_from: z
        .string()
        .min(1)
        .optional()
        .describe(
          'when `path` does not exist, create it as a copy of this file (relative to the config file); for demos and fixtures, e.g. the example config',
        ),
    })
    .strict(),
  z.object({ type: z.literal('memory') }).strict(),
  z
    .object({
      type: z.literal('redis'),
      resync_seconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(30)
        .describe(
          'full reload of the local copy this often, a safety net behind pub/sub invalidation (changes normally apply within milliseconds)',
        ),
    })
    .strict()
    .describe(
      'shared by every replica through the top-level redis section; each replica serves lookups from a local copy',
    ),
]);

const apiKey = z
  .object({
    headers: z
      .array(headerName)
      .default(['x-api-key'])
      .describe('headers carrying the key; also `Authorization: ApiKey <key>`'),
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
    jwks_uri: z
      .url()
      .optional()
      .describe("URL of the issuer's JWKS (http(s)); only this URL is fetched, never one from a token"),
    discovery: z
      .boolean()
      .optional()
      .describe('read jwks_uri from <issuer>/.well-known/openid-configuration (its `issuer` must equal this issuer)'),
    jwks_file: z.string().optional().describe('a local JWKS file (relative to the config file), re-read on refresh'),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
      .min(1)
      .default(['RS256', 'ES256'])
      .describe(
        'accepted `alg` values; a key is used only for algorithms matching its type. none and HS* are never accepted',
      ),
    clock_skew_seconds: seconds(60, 600).describe('leeway for exp, nbf and iat'),
    token_types: z
      .array(
        z
          .string()
          .regex(/^[\x21-\x7e]+$/, 'a media type without spaces, e.g. at+jwt')
          .refine((t) => t.toLowerCase() !== 'application/', 'a media type, e.g. at+jwt'),
      )
      .min(1)
      .default(['at+jwt'])
      .describe(
        'allowed `typ` values (RFC 9068: at+jwt), compared ASCII case-insensitively with `application/` optional and nothing else (no trimming, no parameters); add JWT for providers that still send it',
      ),
    allow_missing_typ: z
      .boolean()
      .default(false)
      .describe('accept tokens without a `typ` header (weakens the ID-token / access-token separation)'),
    max_lifetime_seconds: seconds(86400).describe(
      'exp - iat, and exp - now, may not exceed this (plus skew for exp - now)',
    ),
    scope_claim: z
      .enum(['scope', 'scp'])
      .default('scope')
      .describe('`scope`: space-separated string (RFC 9068); `scp`: array of strings'),
    required_claims: z
      .array(z.string().min(1))
      .default(['sub', 'client_id', 'iat', 'jti'])
      .describe(
        'claims every token must carry (RFC 9068 §2.2: sub, client_id, iat, jti); list fewer only for a provider that omits one (docs/jwt.md lists which), e.g. [sub, azp, iat] for Microsoft Entra ID v2',
      ),
    subject_claim: z.string().min(1).default('sub').describe('claim mapped to the identity subject (x-user-id)'),
    client_id_claims: z
      .array(z.string().min(1))
      .default(['client_id', 'azp'])
      .describe('claims tried in order for the client id (x-client-id)'),
    jwks_refresh_seconds: seconds(300, 86400).describe('background JWKS refresh interval; 0 turns it off'),
    jwks_cooldown_seconds: seconds(30, 3600).describe('unknown kid: at most one refetch per cooldown'),
    fetch_timeout_ms: z
      .number()
      .int()
      .min(10)
      .max(60000)
      .default(5000)
      .describe('timeout of each discovery/JWKS fetch (background; Checks never wait this long)'),
    allow_http: z
      .boolean()
      .default(false)
      .describe(
        'allow plain http:// for jwks_uri / discovery (local development only: keys can be swapped in transit)',
      ),
    unknown_kid_wait_ms: z
      .number()
      .int()
      .min(0)
      .max(150)
      .default(100)
      .describe(
        "how long a Check whose kid is unknown waits for the refetch before answering 503 (inside Envoy's 200 ms deadline)",
      ),
  })
  .strict()
  .refine((j) => [j.jwks_uri, j.discovery, j.jwks_file].filter((x) => x !== undefined && x !== false).length === 1, {
    error: 'set exactly one of jwks_uri, discovery: true, jwks_file',
  })
  .refine((j) => !j.discovery || /^https?:\/\/[^\s]+$/.test(j.issuer), {
    error: 'discovery: true needs an http(s) URL as issuer',
    path: ['issuer'],
  })
  .superRefine((j, ctx) => {
    // Keys fetched in clear can be swapped by anyone on the path: https unless explicitly allowed.
    const url = j.jwks_uri ?? (j.discovery ? j.issuer : undefined);
    if (url?.startsWith('http:') && !j.allow_http) {
      ctx.addIssue({
        code: 'custom',
        path: [j.jwks_uri ? 'jwks_uri' : 'issuer'],
        message: 'use https: (verification keys are fetched from it); for local development set allow_http: true',
      });
    }
  });

const jwtCache = z
  .object({
    max_entries: z.number().int().min(0).default(100000).describe('verified tokens kept (LRU); 0 turns the cache off'),
    ttl_seconds: seconds(300, 86400).describe(
      'a verified token is re-verified after this long, or at its exp if sooner',
    ),
    rejected_max_entries: z
      .number()
      .int()
      .min(0)
      .default(10000)
      .describe('rejected tokens remembered (LRU); 0 turns it off'),
    rejected_ttl_seconds: seconds(10, 300).describe('how long a rejection is remembered'),
  })
  .strict();

const phantomKey = z
  .object({
    kid: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (at most 64)')
      .describe('key id: the JWT header `kid` and the JWKS entry'),
    private_key_file: z
      .string()
      .describe('PEM PKCS#8 private key (relative to the config file), of the type `algorithm` needs'),
    algorithm: z
      .enum(['ES256', 'RS256', 'EdDSA'])
      .optional()
      .describe("this key's algorithm; defaults to phantom_token.algorithm"),
    publish_only: z
      .boolean()
      .default(false)
      .describe(
        'publish in the JWKS without signing: stage a new key (or keep a retired one) so upstreams already know it',
      ),
  })
  .strict();

const introspection = z
  .object({
    endpoint: z.url().describe('RFC 7662 introspection endpoint (https; http only with allow_http)'),
    client_id: z.string().min(1).describe("Portcullis's own client at the authorization server"),
    client_secret: z.string().min(1).describe('use ${env:NAME}; never commit it'),
    auth_method: z
      .enum(['client_secret_basic', 'client_secret_post'])
      .default('client_secret_basic')
      .describe('how the client authenticates to the endpoint (RFC 6749 §2.3.1)'),
    timeout_ms: z
      .number()
      .int()
      .min(10)
      .max(10000)
      .default(150)
      .describe("per call; stay inside Envoy's 200 ms Check deadline"),
    ca_file: z
      .string()
      .optional()
      .describe("PEM CA bundle trusted for the endpoint's TLS (system CAs otherwise); relative to the config file"),
    allow_http: z
      .boolean()
      .default(false)
      .describe(
        'allow a plain http:// endpoint (local development only: the client secret and tokens travel in clear)',
      ),
    issuer: z.string().min(1).optional().describe('when set, an answer that carries `iss` must carry exactly this one'),
    audiences: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'an answer that carries `aud` must name one of these (the API behind Portcullis). Required unless allow_any_audience: true',
      ),
    allow_any_audience: z
      .boolean()
      .default(false)
      .describe(
        'accept answers whatever their `aud`: only for an authorization server whose every token is meant for this API. Say it explicitly instead of audiences',
      ),
    require_audience: z
      .boolean()
      .default(false)
      .describe(
        'an answer without `aud` is refused too (many servers leave `aud` out for tokens issued without a resource, so it is off by default)',
      ),
    require_token_type: z
      .boolean()
      .default(true)
      .describe(
        'an answer must say the token is an access token (`token_type`); refresh tokens come back without one from some servers',
      ),
    access_token_types: z
      .array(z.string().min(1))
      .min(1)
      .default(['Bearer', 'access_token', 'urn:ietf:params:oauth:token-type:access_token'])
      .describe('`token_type` values that mean an access token (case-insensitive); anything else is rejected'),
    clock_skew_seconds: seconds(30, 600).describe('leeway for `nbf` and `iat` in the future; `exp` gets none'),
    max_concurrency: z.number().int().min(1).default(64).describe('introspection calls in flight at most; beyond: 503'),
    max_per_second: z
      .number()
      .int()
      .min(1)
      .default(200)
      .describe("introspection calls started per second at most (burst: one second's worth); beyond: 503"),
    retry_after_seconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(5)
      .describe('Retry-After sent with 503 when the endpoint is down'),
    cache: z
      .object({
        max_ttl_seconds: seconds(60).describe(
          'an active answer is reused until min(exp, now + this): a revoked token stops passing within it',
        ),
        negative_ttl_seconds: seconds(5, 3600).describe('how long an inactive / rejected answer is reused'),
        max_entries: z.number().int().min(1).default(100000).describe('active answers kept (LRU)'),
        negative_max_entries: z
          .number()
          .int()
          .min(1)
          .default(10000)
          .describe('inactive answers kept (LRU), separate so a flood of bad tokens cannot evict good ones'),
      })
      .strict()
      .prefault({}),
    phantom_token: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe('replace an allowed opaque token upstream with a JWT signed by Portcullis'),
        issuer: z.string().default('https://portcullis.internal').describe('`iss` of phantom tokens'),
        audience: z.string().default('internal').describe('`aud` of phantom tokens'),
        ttl_seconds: seconds(60, 3600).describe('phantom `exp` = min(original exp, now + this)'),
        for_api_keys: z.boolean().default(false).describe('API-key identities get a phantom token too'),
        algorithm: z.enum(['ES256', 'RS256', 'EdDSA']).default('ES256'),
        keys: z
          .array(phantomKey)
          .min(1)
          .optional()
          .describe(
            'newest first: the first key without publish_only signs, all are published at /.well-known/jwks.json. Without keys a key is generated at start (single node, development only)',
          ),
      })
      .strict()
      .superRefine((p, ctx) => {
        const kids = new Set<string>();
        p.keys?.forEach((k, i) => {
          if (kids.has(k.kid))
            ctx.addIssue({ code: 'custom', path: ['keys', i, 'kid'], message: `duplicate kid "${k.kid}"` });
          kids.add(k.kid);
        });
        if (p.keys && p.keys.every((k) => k.publish_only)) {
          ctx.addIssue({ code: 'custom', path: ['keys'], message: 'at least one key must sign (publish_only: false)' });
        }
      })
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.endpoint.startsWith('http:') && !c.allow_http) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: 'use https: (the client secret and tokens are sent); for local development set allow_http: true',
      });
    }
    // An answer is the authorization server's word about a token, for whichever API it was issued
    // to: without an audience check, a token issued for another API of the same server passes here.
    if (!c.audiences && !c.allow_any_audience) {
      ctx.addIssue({
        code: 'custom',
        path: ['audiences'],
        message:
          'list the audiences of this API (an answer carrying aud must name one), or set allow_any_audience: true if every token of this authorization server is meant for it',
      });
    }
    if (c.audiences && c.allow_any_audience) {
      ctx.addIssue({
        code: 'custom',
        path: ['allow_any_audience'],
        message: 'set either audiences or allow_any_audience: true, not both',
      });
    }
  });

const rateLimit = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (at most 64)')
      .describe('referenced by routes[].rate_limit; shown in the RateLimit-Policy header'),
    key: z
      .enum(['client_id', 'key_id', 'source_ip', 'subject'])
      .default('client_id')
      .describe(
        'what is counted: one budget per client, per API key, per source IP or per token subject (a credential without the field, and every request on a public route, is counted by source IP)',
      ),
    limit: z.number().int().min(1).max(1_000_000_000).describe('requests allowed per window'),
    window_seconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .describe(
        'fixed window, aligned to the epoch (Redis server clock when redis is configured): 1 second to 30 days (a quota)',
      ),
    ipv4_prefix_length: z
      .number()
      .int()
      .min(0)
      .max(32)
      .default(32)
      .describe('source IP counting: IPv4 addresses are counted by their network of this many bits (32: each address)'),
    ipv6_prefix_length: z
      .number()
      .int()
      .min(0)
      .max(128)
      .default(64)
      .describe(
        'source IP counting: IPv6 addresses are counted by their network of this many bits; 64 because one host usually holds a whole /64',
      ),
    max_keys: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .describe(
        'in-memory limiter (no redis section): distinct keys counted at once in the current window; beyond it, new keys share one overflow budget of `limit` until the window ends (counted in portcullis_ratelimit_overflow_total)',
      ),
    on_redis_error: z
      .enum(['allow', 'deny'])
      .default('allow')
      .describe('Redis down or slow: allow (counted in portcullis_ratelimit_failopen_total) or deny with 503'),
  })
  .strict();

/** A route path literal must be a path a request can have once normalized (src/core/paths.ts). */
const routePath = (what: string) =>
  z
    .string()
    .startsWith('/')
    .superRefine((p, ctx) => {
      const n = normalizePath(p);
      if (!n.ok)
        ctx.addIssue({
          code: 'custom',
          message: `no request path can match ${what} "${p}" (${n.reason}); see docs/security.md#paths`,
        });
    });

const route = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, _ . : -'),
    match: z
      .object({
        methods: z.array(z.string().regex(/^[A-Z]+$/, 'uppercase HTTP method')).optional(),
        path_prefix: routePath('path_prefix')
          .optional()
          .describe('whole segments: /v1/orders matches /v1/orders, /v1/orders/7 and /v1/orders.json, not /v1/ordersX'),
        path: routePath('path')
          .optional()
          .describe(
            'exact path, without query; also matches its trailing-slash form (/v1/secret/) and a format suffix (/v1/secret.json)',
          ),
        host: z
          .string()
          .superRefine((h, ctx) => {
            const problem = configProblem(() => compileHostPattern(h, 'host'));
            if (problem) ctx.addIssue({ code: 'custom', message: problem });
          })
          .optional()
          .describe(
            "exact host, or *.example.com for exactly one label on the left; case, one trailing dot and the request's port are ignored",
          ),
        path_template: z
          .string()
          .optional()
          .describe(
            'a path with variables, /v1/tenants/{tenant}/orders/{id}: {name} is one non-empty segment, a final {name...} the rest; the values are request.params in conditions (docs/policy.md)',
          ),
        case_sensitive: z
          .boolean()
          .optional()
          .describe(
            'match path and path_prefix case-sensitively; by default they match in any case (/ADMIN is /admin), because many upstreams fold case',
          ),
      })
      .strict()
      .prefault({}),
    case_sensitive: z.boolean().optional().describe('same as match.case_sensitive'),
    public: z.boolean().default(false),
    auth: z.array(z.enum(CREDENTIAL_KIND_NAMES)).optional().describe('credential kinds accepted'),
    scopes: z.array(z.string().min(1)).default([]).describe('all required'),
    rate_limit: z.string().optional().describe('name of a rate_limits entry; on a public route it counts by source IP'),
    when: z
      .array(
        z.union([
          z.string().describe('a CEL expression'),
          z
            .object({
              name: z
                .string()
                .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - (1-64)')
                .optional()
                .describe('what logs and metrics call the condition'),
              expr: z.string().describe('a CEL expression'),
            })
            .strict(),
        ]),
      )
      .optional()
      .describe(
        'CEL conditions that must all hold (after the credential and scopes); false: 403 condition_failed, an error: 403 condition_error (docs/policy.md)',
      ),
    mode: z
      .enum(['enforce', 'shadow'])
      .default('enforce')
      .describe(
        'shadow: decide and record (log, portcullis_shadow_decisions_total) but allow; a would-be deny sets no identity header',
      ),
    mcp: mcpRouteSchema.optional(),
    step_up: stepUpSchema.optional(),
    sender_constraint: senderConstraint,
  })
  .strict()
  .superRefine((r, ctx) => {
    // Compiled here so that config check, start and reload all refuse them, with their paths.
    const caseSensitive = r.match.case_sensitive ?? r.case_sensitive ?? false;
    if (r.match.path_template !== undefined) {
      if (r.match.path !== undefined || r.match.path_prefix !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['match', 'path_template'],
          message: 'a route matches by one of path, path_prefix and path_template',
        });
      const problem = configProblem(() => compilePathTemplate(r.match.path_template!, 'path_template', caseSensitive));
      if (problem) ctx.addIssue({ code: 'custom', path: ['match', 'path_template'], message: problem });
    }
    r.when?.forEach((w, j) => {
      const problem = configProblem(() => compileCondition(typeof w === 'string' ? w : w.expr, `when[${j}]`));
      if (problem) ctx.addIssue({ code: 'custom', path: ['when', j], message: problem });
    });
  })
  .refine(
    (r) =>
      r.case_sensitive === undefined ||
      r.match.case_sensitive === undefined ||
      r.case_sensitive === r.match.case_sensitive,
    {
      error: 'case_sensitive and match.case_sensitive disagree',
      path: ['case_sensitive'],
    },
  );

// HTTP forward-auth (docs/forward-auth.md): the same decisions for Envoy's HTTP ext_authz, nginx
// auth_request and Traefik ForwardAuth, served on the ops listener.
const cidr = z.string().refine(
  (c) => {
    const [addr, bits, extra] = c.split('/');
    const family = isIP(addr ?? '');
    if (!family || extra !== undefined) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d{1,3}$/.test(bits) && n <= (family === 6 ? 128 : 32);
  },
  { error: 'must be an IP address or CIDR, e.g. 10.0.0.0/8 or fd00::/8' },
);
const OPS_PATHS = ['/healthz', '/readyz', '/metrics'];
const forwardAuth = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe('serve the forward-auth endpoint on the ops listener (server.http.address)'),
    path_prefix: z
      .string()
      .regex(/^(\/[A-Za-z0-9._~-]+)+$/, 'must be a path like /authz: starts with /, no trailing /, no query')
      .refine(
        (p) => !OPS_PATHS.includes(p) && !p.startsWith('/.well-known'),
        'must not shadow /healthz, /readyz, /metrics or /.well-known',
      )
      .default('/authz')
      .describe(
        "nginx and Traefik call this path; Envoy's http_service uses it as path_prefix and appends the original path (read at start; restart to change)",
      ),
    trusted_proxies: z
      .array(cidr)
      .min(1)
      .default(['127.0.0.1/32', '::1/128'])
      .describe(
        'TCP peers allowed to call the endpoint and to state the original request (X-Original-*, X-Forwarded-*); any other peer gets 403',
      ),
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    server,
    redis: redis.optional().describe('shared state; memory/file stores without it'),
    realm: z
      .string()
      .regex(/^[^"\\]*$/, 'no quotes or backslashes')
      .default('portcullis')
      .describe('WWW-Authenticate realm'),
    source_ip_header: z
      .union([
        headerName,
        z
          .object({
            name: headerName.describe('header carrying the client address'),
            trusted_hops: z
              .number()
              .int()
              .min(0)
              .max(16)
              .default(0)
              .describe(
                "proxies in front of Envoy that append to the header: the address is the entry this many places from the right (0: the rightmost), as Envoy's xff_num_trusted_hops",
              ),
          })
          .strict(),
      ])
      .optional()
      .describe(
        'take the client IP from this header instead of the TCP peer: x-envoy-external-address, or x-forwarded-for with Envoy use_remote_address: true (docs/security.md#client-address). The chosen entry must be one valid IP address, else 400',
      ),
    logging: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') })
      .strict()
      .prefault({}),
    headers,
    credentials: z
      .object({
        api_key: apiKey.optional(),
        jwt: z
          .array(jwtIssuer)
          .optional()
          .describe("JWT access token issuers (allow-list, selected by the token's `iss`)"),
        jwt_cache: jwtCache.prefault({}).describe('verified-token and rejection caches for JWTs'),
        introspection: introspection.optional(),
        max_credential_bytes: z.number().int().min(256).max(65536).default(8192),
        dpop: dpop.optional().describe('DPoP proof of possession (RFC 9449): accepts Authorization: DPoP'),
        client_certificate: clientCertificate
          .prefault({})
          .describe(
            'where the client certificate is read: certificate-bound tokens (RFC 8705) and the mtls credential',
          ),
        mtls: mtls
          .optional()
          .describe('the mtls credential kind: the caller is the workload its client certificate names'),
      })
      .strict()
      .prefault({}),
    rate_limits: z.array(rateLimit).default([]),
    forward_auth: forwardAuth.describe(
      'HTTP forward-auth endpoint for Envoy http_service, nginx auth_request, Traefik ForwardAuth',
    ),
    tracing: tracingSchema.prefault({}),
    routes: z.array(route).default([]).describe('first match wins'),
    protected_resources: protectedResourcesSchema,
    default: z.literal('deny').default('deny').describe('no route matched: 403'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    const limits = new Set(c.rate_limits.map((r) => r.name));
    c.routes.forEach((r, i) => {
      if (names.has(r.name))
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `duplicate route name "${r.name}"` });
      names.add(r.name);
      if (r.public && (r.auth || r.scopes.length)) {
        ctx.addIssue({ code: 'custom', path: ['routes', i], message: 'a public route takes no auth or scopes' });
      }
      if (!r.public && !r.auth?.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'auth'],
          message: 'a protected route must list at least one credential kind (or set public: true)',
        });
      }
      for (const [j, kind] of (r.auth ?? []).entries()) {
        const section: readonly string[] = CREDENTIAL_KINDS[kind].section;
        const value = section.reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], c);
        if (value === undefined || (Array.isArray(value) && value.length === 0)) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', i, 'auth', j],
            message: `"${kind}" needs ${section.join('.')} to be configured`,
          });
        }
      }
      if (r.sender_constraint && r.sender_constraint !== 'none' && r.public)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'sender_constraint'],
          message: 'a public route has no token to constrain',
        });
      if (r.sender_constraint === 'dpop' && !c.credentials.dpop)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'sender_constraint'],
          message: 'sender_constraint dpop needs credentials.dpop to be configured',
        });
      if (r.sender_constraint === 'dpop' && !r.auth?.some((k) => k === 'jwt' || k === 'oauth2'))
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'sender_constraint'],
          message: 'sender_constraint dpop needs a token kind (jwt, oauth2) in auth',
        });
      if (r.rate_limit && !limits.has(r.rate_limit)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'rate_limit'],
          message: `no rate_limits entry named "${r.rate_limit}"`,
        });
      }
    });
    const issuers = new Set<string>();
    c.credentials.jwt?.forEach((j, i) => {
      if (issuers.has(j.issuer))
        ctx.addIssue({
          code: 'custom',
          path: ['credentials', 'jwt', i, 'issuer'],
          message: `duplicate issuer "${j.issuer}"`,
        });
      issuers.add(j.issuer);
    });
    if (c.credentials.api_key?.store.type === 'redis' && !c.redis) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentials', 'api_key', 'store', 'type'],
        message: 'store type redis needs a top-level redis section',
      });
    }
    const phantom = c.credentials.introspection?.phantom_token;
    const signingKeys = !!phantom?.enabled && !!phantom.keys?.length;
    for (const issue of resourceConfigIssues(c.protected_resources, c.routes, { signingKeys })) {
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    }
    protectedRouteIssues(c, ctx);
    const set = c.headers.set;
    for (const h of Object.keys(set)) {
      if (h === 'authorization' || h === 'host' || h.startsWith(':')) {
        ctx.addIssue({ code: 'custom', path: ['headers', 'set', h], message: `"${h}" cannot be an identity header` });
      }
    }
  });

/** Room in a Check message for everything but the body (headers, path, attributes). */
const CHECK_HEADROOM_BYTES = 64 * 1024;

/**
 * What a route of a protected resource must be: a token that can carry an audience (API keys carry
 * none, so every API-key request would be refused), and scopes a challenge can name.
 */
function protectedRouteIssues(
  c: {
    server: { grpc: { max_receive_message_bytes: number } };
    routes: readonly {
      name: string;
      auth?: readonly string[];
      scopes: readonly string[];
      mcp?: { max_body_bytes: number };
      step_up?: unknown;
    }[];
    protected_resources: readonly ProtectedResourceConfig[];
  },
  ctx: z.RefinementCtx,
): void {
  const index = new Map(c.routes.map((r, i) => [r.name, i]));
  c.protected_resources.forEach((res, i) => {
    res.routes.forEach((name, j) => {
      const ri = index.get(name);
      if (ri === undefined) return;
      const r = c.routes[ri];
      if (r.auth?.includes('api-key')) {
        ctx.addIssue({
          code: 'custom',
          path: ['protected_resources', i, 'routes', j],
          message: `route "${name}" accepts API keys, which carry no audience: every one would be refused (RFC 8707). Remove api-key from routes[${ri}].auth`,
        });
      }
    });
  });
  c.routes.forEach((r, i) => {
    // The body travels inside the Check message, with the headers: the gRPC limit must hold both.
    const grpcLimit = c.server.grpc.max_receive_message_bytes;
    if (r.mcp && r.mcp.max_body_bytes + CHECK_HEADROOM_BYTES > grpcLimit) {
      ctx.addIssue({
        code: 'custom',
        path: ['routes', i, 'mcp', 'max_body_bytes'],
        message: `Envoy sends the body inside the Check message, which server.grpc.max_receive_message_bytes (${grpcLimit}) bounds: keep this at most ${grpcLimit - CHECK_HEADROOM_BYTES}, or raise that limit`,
      });
    }
    if (!r.mcp && !r.step_up && !c.protected_resources.some((res) => res.routes.includes(r.name))) return;
    r.scopes.forEach((s, j) => {
      if (!isChallengeToken(s))
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'scopes', j],
          message:
            'a scope of a protected resource or MCP route is visible ASCII without spaces, quotes or backslashes (RFC 6750 §3), so a challenge can name it',
        });
    });
  });
}

export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type JwtIssuerConfig = NonNullable<Config['credentials']['jwt']>[number];
export type JwtCacheConfig = Config['credentials']['jwt_cache'];
export type IntrospectionConfig = NonNullable<Config['credentials']['introspection']>;
export type RateLimitConfig = Config['rate_limits'][number];
export type ApiKeyConfig = NonNullable<Config['credentials']['api_key']>;
export type RedisConfig = NonNullable<Config['redis']>;
export type DpopConfig = NonNullable<Config['credentials']['dpop']>;
export type ClientCertificateConfig = Config['credentials']['client_certificate'];
export type MtlsConfig = NonNullable<Config['credentials']['mtls']>;
