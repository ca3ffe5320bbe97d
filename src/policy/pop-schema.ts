// The config of proof of possession (docs/proof-of-possession.md): `credentials.dpop` (RFC 9449),
// `credentials.client_certificate` (where the client certificate of certificate-bound tokens,
// RFC 8705, and of the mtls credential is read), `credentials.mtls` (client-certificate identity)
// and `routes[].sender_constraint`. Kept apart from schema.ts, which includes them.
import { z } from 'zod';

/** The DPoP proof algorithms accepted in config: asymmetric only (none and HS* are never accepted). */
export const DPOP_ALGORITHM_NAMES = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'EdDSA',
  'Ed25519',
] as const;

export const SENDER_CONSTRAINTS = ['none', 'dpop', 'mtls', 'any'] as const;

const origin = z
  .string()
  .min(1)
  .describe('the origin clients call (scheme://host[:port]), optionally with the path prefix the front proxy strips');

export const dpop = z
  .object({
    algorithms: z
      .array(z.enum(DPOP_ALGORITHM_NAMES))
      .min(1)
      .default(['ES256', 'RS256', 'PS256', 'EdDSA', 'Ed25519'])
      .describe(
        'accepted proof `alg` values (also the `algs` of the DPoP challenge); EdDSA and Ed25519 are the same keys under two names: list both to accept either',
      ),
    max_age_seconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe(
        'a proof older than this by its `iat` (plus clock_skew_seconds) is refused; also how long a jti is remembered',
      ),
    clock_skew_seconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(5)
      .describe('leeway for clocks: for old proofs, and how far in the future a proof `iat` may be'),
    nonce: z
      .enum(['none', 'required'])
      .default('none')
      .describe(
        'required: every proof carries a server nonce (RFC 9449, §9); a request without one is answered 401 error="use_dpop_nonce" with a DPoP-Nonce header',
      ),
    nonce_secret: z
      .string()
      .refine((v) => Buffer.byteLength(v, 'utf8') >= 32, 'must be at least 32 bytes (openssl rand -base64 48)')
      .optional()
      .describe(
        'HMAC secret of the nonces, at least 32 bytes, the same on every replica (e.g. ${env:DPOP_NONCE_SECRET}); without it each replica draws its own at start',
      ),
    nonce_window_seconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe('a nonce is accepted in its window and the next one'),
    external_origin: z
      .union([origin, z.record(z.string(), origin)])
      .optional()
      .describe(
        "behind a proxy that terminates TLS or rewrites the host: the origin clients call, which replaces Envoy's scheme and authority when rebuilding htu; a map from the authority Envoy sees (host or host:port) to the origin for several. X-Forwarded-Host / -Proto are never read",
      ),
    max_proof_bytes: z
      .number()
      .int()
      .min(512)
      .max(65536)
      .default(8192)
      .describe('a larger DPoP header is refused before it is parsed'),
    replay_cache: z
      .object({
        max_entries: z
          .number()
          .int()
          .min(1)
          .max(100_000_000)
          .default(200_000)
          .describe(
            'proofs remembered in memory (per replica, also in front of Redis): size it for peak proofs per second × (max_age_seconds + 2 × clock_skew_seconds)',
          ),
      })
      .strict()
      .prefault({}),
    on_redis_error: z
      .enum(['deny', 'allow'])
      .default('deny')
      .describe(
        "with a redis section, when Redis cannot say whether a jti was seen: deny with 503 (default), or allow on this replica's memory alone (replays across replicas go unnoticed; counted)",
      ),
  })
  .strict();

export const clientCertificate = z
  .object({
    source: z
      .enum(['envoy', 'xfcc', 'client-cert'])
      .default('envoy')
      .describe(
        "envoy: the certificate Envoy verified (source.certificate; needs include_peer_certificate: true). xfcc: Envoy's x-forwarded-client-cert, client-cert: RFC 9440 Client-Cert, both written by a trusted front proxy that removes client copies: use them only when every path to Envoy passes that proxy",
      ),
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
      .toLowerCase()
      .optional()
      .describe('xfcc / client-cert: the header name, when not x-forwarded-client-cert / client-cert'),
    trusted_hops: z
      .number()
      .int()
      .min(0)
      .max(15)
      .default(0)
      .describe(
        'xfcc: trusted proxies between the one that verified the client and Envoy that each append an element (0: the last element)',
      ),
    by: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe("xfcc: the element's By (the URI SAN of the proxy that wrote it) must be one of these"),
  })
  .strict();

export const mtls = z
  .object({
    identity: z
      .enum(['spiffe', 'subject'])
      .default('spiffe')
      .describe('spiffe: the SPIFFE ID of the only URI SAN (X509-SVID); subject: one subject DN field (subject_field)'),
    trust_domains: z
      .array(z.string().regex(/^[a-z0-9._-]{1,255}$/, 'a SPIFFE trust domain: lower-case letters, digits, . - _'))
      .default([])
      .describe('identity spiffe: the trust domains accepted (example.org); any other is refused with 403'),
    subject_field: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, 'an OpenSSL short name such as CN, O, OU, emailAddress')
      .default('CN')
      .describe('identity subject: the subject DN attribute that names the caller (present exactly once)'),
    client_id: z
      .enum(['subject', 'spiffe_path', 'none'])
      .default('subject')
      .describe(
        "the identity's client_id: the subject, the SPIFFE ID's path without its leading / (ns/prod/sa/web), or none",
      ),
    scopes: z.array(z.string().min(1)).default([]).describe('scopes granted to every client-certificate identity'),
    ca_file: z
      .string()
      .optional()
      .describe(
        "PEM CA certificates (relative to the config file): re-verify the certificate's chain here too, for deployments where Envoy's validation is not trusted alone",
      ),
    clock_skew_seconds: z
      .number()
      .int()
      .min(0)
      .max(600)
      .default(60)
      .describe('leeway when the validity period is checked again here'),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.identity === 'spiffe' && m.trust_domains.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['trust_domains'],
        message: 'identity spiffe needs at least one trust domain, e.g. [example.org]',
      });
    if (m.identity !== 'spiffe' && m.client_id === 'spiffe_path')
      ctx.addIssue({ code: 'custom', path: ['client_id'], message: 'spiffe_path needs identity: spiffe' });
  });

export const senderConstraint = z
  .enum(SENDER_CONSTRAINTS)
  .optional()
  .describe(
    'none (default): bound tokens are checked, unbound accepted; dpop: a DPoP-bound token with its proof; mtls: a certificate-bound token (or the mtls credential); any: one of them',
  );
