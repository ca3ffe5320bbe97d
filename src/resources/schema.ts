// Configuration for protected resources (RFC 9728), MCP routes and step-up (RFC 9470): zod
// sub-schemas for the top-level `protected_resources` list and the `routes[].mcp` and
// `routes[].step_up` options, and the checks that need the whole config (resourceConfigIssues).
import { z } from 'zod';
import { isChallengeToken } from './challenge.ts';
import { resourceIdentifierIssue, resourceLocation } from './resource-id.ts';

const routeName = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, _ . : -');

/** A scope or an ACR value as a challenge carries it (RFC 6750 §3 scope-token, RFC 9470 §3). */
const challengeToken = (what: string) =>
  z
    .string()
    .min(1)
    .max(256)
    .refine(
      isChallengeToken,
      `a ${what} is visible ASCII without spaces, quotes or backslashes (RFC 6750 §3), so it can be named in a challenge`,
    );

const scopeToken = challengeToken('scope');

const JWS_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'HS256',
  'HS384',
  'HS512',
] as const;

/** An http(s) URL for a metadata member: https unless allow_http, no fragment. */
function urlIssue(value: string, allowHttp: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:'))
    return 'must be an https URL (http only with allow_http: true, for local development)';
  if (value.includes('#')) return 'must not have a fragment';
  return undefined;
}

const URL_MEMBERS = ['resource_documentation', 'resource_policy_uri', 'resource_tos_uri', 'jwks_uri'] as const;

export const protectedResourceSchema = z
  .object({
    resource: z
      .string()
      .describe(
        'the resource identifier (RFC 9728 §1.2, RFC 8707 §2): the https URL clients use for it, e.g. https://mcp.example.com/mcp, written exactly as clients send it (lower-case scheme and host, no default port, no query or fragment). Tokens used on its routes must name it in `aud`; its metadata is served at /.well-known/oauth-protected-resource plus its path',
      ),
    routes: z
      .array(routeName)
      .min(1)
      .describe(
        'names of the routes (routes[].name) that make up this resource: their 401 and 403 challenges carry resource_metadata, and their tokens must have this resource in `aud`',
      ),
    authorization_servers: z
      .array(z.string())
      .min(1)
      .describe(
        'issuer identifiers of the authorization servers that issue tokens for this resource (RFC 9728 §2; RFC 8414 issuer URLs), exactly as each server writes its `issuer`',
      ),
    scopes_supported: z
      .array(scopeToken)
      .optional()
      .describe(
        'scopes clients may request for this resource (RFC 9728 §2, RECOMMENDED); MCP clients request these when a challenge names none. Leave out offline_access',
      ),
    resource_name: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('human-readable name of the resource, shown to end users (RFC 9728 §2, RECOMMENDED)'),
    resource_documentation: z
      .string()
      .optional()
      .describe('URL of developer documentation for the resource (RFC 9728 §2)'),
    resource_policy_uri: z.string().optional().describe("URL of the resource's data-use policy (RFC 9728 §2)"),
    resource_tos_uri: z.string().optional().describe("URL of the resource's terms of service (RFC 9728 §2)"),
    jwks_uri: z
      .string()
      .optional()
      .describe(
        "URL of the resource's public JWK Set (RFC 9728 §2), e.g. where the phantom-token JWKS is published: clients verify signed_metadata with it",
      ),
    resource_signing_alg_values_supported: z
      .array(z.enum(JWS_ALGS))
      .min(1)
      .optional()
      .describe('JWS algorithms the resource signs its responses with (RFC 9728 §2); `none` is never listed'),
    authorization_details_types_supported: z
      .array(z.string().min(1).max(256))
      .min(1)
      .optional()
      .describe('RFC 9396 authorization_details types the resource understands (RFC 9728 §2)'),
    signed_metadata: z
      .object({
        issuer: z
          .string()
          .min(1)
          .optional()
          .describe(
            '`iss` of the signed metadata: who attests it (RFC 9728 §2.2); defaults to the resource identifier',
          ),
      })
      .strict()
      .optional()
      .describe(
        'also publish the metadata as a JWT in `signed_metadata` (RFC 9728 §2.2), signed with the phantom-token signing key (credentials.introspection.phantom_token.keys); clients that check it verify it with the key published at jwks_uri',
      ),
    allow_http: z
      .boolean()
      .default(false)
      .describe('allow http:// for the resource and the URLs above (local development only: RFC 9728 requires https)'),
  })
  .strict()
  .superRefine((r, ctx) => {
    const issue = resourceIdentifierIssue(r.resource, r.allow_http);
    if (issue) ctx.addIssue({ code: 'custom', path: ['resource'], message: issue });
    r.authorization_servers.forEach((as, i) => {
      const bad =
        urlIssue(as, r.allow_http) ??
        (as.includes('?') ? 'must not have a query (RFC 8414 §2: an issuer has none)' : undefined);
      if (bad) ctx.addIssue({ code: 'custom', path: ['authorization_servers', i], message: bad });
    });
    for (const m of URL_MEMBERS) {
      const v = r[m];
      const bad = v === undefined ? undefined : urlIssue(v, r.allow_http);
      if (bad) ctx.addIssue({ code: 'custom', path: [m], message: bad });
    }
    duplicates(r.routes).forEach((i) =>
      ctx.addIssue({ code: 'custom', path: ['routes', i], message: `route "${r.routes[i]}" is listed twice` }),
    );
  });

export const protectedResourcesSchema = z
  .array(protectedResourceSchema)
  .default([])
  .describe(
    'OAuth protected resources (RFC 9728): each names its routes, publishes its metadata document, and binds their tokens to its identifier (RFC 8707). docs/mcp.md',
  )
  .superRefine((list, ctx) => {
    const resources = new Map<string, number>();
    const locations = new Map<string, number>();
    const routes = new Map<string, number>();
    list.forEach((r, i) => {
      const first = resources.get(r.resource);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'resource'],
          message: `resource "${r.resource}" is also protected_resources[${first}]`,
        });
        return;
      }
      resources.set(r.resource, i);
      if (resourceIdentifierIssue(r.resource, r.allow_http)) return;
      // Two resources whose metadata would be answered at the same host and path cannot be told
      // apart by the request for it (also: https://api.example.com and https://api.example.com/).
      const loc = resourceLocation(r.resource);
      for (const p of loc.wellKnownPaths) {
        const key = `${loc.hostKey}${p}`;
        const other = locations.get(key);
        if (other !== undefined && other !== i) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'resource'],
            message: `its metadata would be served at ${p} on the same host as protected_resources[${other}]: give one of them another path`,
          });
        }
        locations.set(key, i);
      }
      r.routes.forEach((name, j) => {
        const other = routes.get(name);
        // One route, one resource: its challenges name one metadata URL and its tokens one audience.
        if (other !== undefined && other !== i) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'routes', j],
            message: `route "${name}" already belongs to protected_resources[${other}]`,
          });
        }
        routes.set(name, i);
      });
    });
  });

function duplicates(xs: readonly string[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  xs.forEach((x, i) => {
    if (seen.has(x)) out.push(i);
    seen.add(x);
  });
  return out;
}

/** A tool-name pattern: `*` any run of characters (none too), `?` exactly one; everything else literal. */
const toolGlob = z
  .string()
  .min(1)
  .max(256)
  .refine((g) => !/[\x00-\x1f\x7f]/.test(g), 'no control characters');

export const UNLISTED_TOOL_CHOICES = ['route_scopes', 'deny'] as const;

export const MCP_BODY_LIMIT = 4 * 1024 * 1024;

export const mcpRouteSchema = z
  .object({
    tools: z
      .record(toolGlob, z.array(scopeToken))
      .default({})
      .describe(
        "tool name pattern -> scopes a tools/call of a matching tool needs on top of the route's scopes. `*` matches any run of characters, `?` one character. When several patterns match, the tool needs the scopes of all of them (so a broad pattern cannot be undercut by a narrower one)",
      ),
    unlisted_tools: z
      .enum(UNLISTED_TOOL_CHOICES)
      .default('route_scopes')
      .describe(
        "a tools/call of a tool no pattern matches: route_scopes = the route's scopes suffice; deny = 403 forbidden (mcp_tool_not_listed)",
      ),
    tool_names_case_sensitive: z
      .boolean()
      .default(false)
      .describe(
        'match tool names case-sensitively. By default they match in any case (Delete_User matches delete_*): a server that folds case then cannot be reached past a pattern, and matching more only adds scopes',
      ),
    max_body_bytes: z
      .number()
      .int()
      .min(1024)
      .max(MCP_BODY_LIMIT)
      .default(1024 * 1024)
      .describe(
        "largest JSON-RPC body read; a larger one is 400 (mcp_body_too_large). Set Envoy's with_request_body.max_request_bytes to the same value, with allow_partial_message: false",
      ),
  })
  .strict()
  .describe(
    'the route is an MCP endpoint (Streamable HTTP): the JSON-RPC message of each POST is read from the body Envoy sends (with_request_body) and a tools/call needs the scopes of its tool. A POST without a readable single JSON-RPC message is 400',
  );

export const stepUpSchema = z
  .object({
    acr_values: z
      .array(challengeToken('ACR value'))
      .min(1)
      .optional()
      .describe(
        "accepted authentication context classes, most preferred first: the token's `acr` must be one of them (RFC 9470)",
      ),
    max_age_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600)
      .optional()
      .describe(
        "the user must have authenticated at most this long ago: the token's `auth_time` is checked (RFC 9470)",
      ),
    clock_skew_seconds: z
      .number()
      .int()
      .min(0)
      .max(600)
      .default(60)
      .describe('leeway for auth_time, both for age and for a time in the future'),
  })
  .strict()
  .refine((s) => s.acr_values !== undefined || s.max_age_seconds !== undefined, {
    error: 'set acr_values, max_age_seconds or both',
  })
  .describe(
    'step-up authentication (RFC 9470): a token whose `acr` or `auth_time` (JWT claims or introspection members) does not meet this is 401 error="insufficient_user_authentication" with acr_values / max_age in the challenge',
  );

export type ProtectedResourceConfig = z.output<typeof protectedResourceSchema>;
export type McpRouteConfig = z.output<typeof mcpRouteSchema>;
export type StepUpConfig = z.output<typeof stepUpSchema>;

/** The parts of a route resourceConfigIssues reads. */
export interface RouteForResources {
  name: string;
  public?: boolean;
  auth?: readonly string[];
  mcp?: unknown;
  step_up?: unknown;
}

export interface ConfigIssue {
  /** From the config root, as zod paths: e.g. ['protected_resources', 0, 'routes', 1]. */
  path: (string | number)[];
  message: string;
}

/**
 * Checks that need more than the protected_resources list: for the top-level superRefine of the
 * config schema (ctx.addIssue each). `signingKeys`: whether phantom-token keys are configured.
 */
export function resourceConfigIssues(
  resources: readonly ProtectedResourceConfig[],
  routes: readonly RouteForResources[],
  opts: { signingKeys: boolean },
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const byName = new Map(routes.map((r, i) => [r.name, { r, i }]));
  resources.forEach((res, i) => {
    res.routes.forEach((name, j) => {
      const found = byName.get(name);
      if (!found) {
        issues.push({
          path: ['protected_resources', i, 'routes', j],
          message: `no route named "${name}" (routes[].name)`,
        });
      } else if (found.r.public) {
        issues.push({
          path: ['protected_resources', i, 'routes', j],
          message: `route "${name}" is public: it has no token to bind to the resource`,
        });
      }
    });
    if (res.signed_metadata && !opts.signingKeys) {
      issues.push({
        path: ['protected_resources', i, 'signed_metadata'],
        message:
          'needs a signing key: configure credentials.introspection.phantom_token.keys (every node must sign with the same key)',
      });
    }
  });
  routes.forEach((r, i) => {
    if (r.step_up !== undefined) {
      if (r.public)
        issues.push({
          path: ['routes', i, 'step_up'],
          message: 'a public route has no token to check acr or auth_time in',
        });
      else if (r.auth?.includes('api-key')) {
        issues.push({
          path: ['routes', i, 'step_up'],
          message:
            'API keys carry no acr or auth_time, so every API-key request would be refused: remove api-key from auth, or step_up',
        });
      }
    }
    if (r.mcp !== undefined && r.public) {
      issues.push({
        path: ['routes', i, 'mcp'],
        message: 'a public route has no token whose scopes a tool could require',
      });
    }
  });
  return issues;
}
