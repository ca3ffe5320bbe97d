// The core's RouteGuard (src/core/protected-resource.ts) for each route of a protected resource, MCP
// route or step-up route, compiled once per config from protected_resources, routes[].mcp and
// routes[].step_up.
import type { McpOutcome, ResourceGuards, RouteGuard } from '../core/protected-resource.ts';
import type { DenyReason } from '../core/reasons.ts';
import type { AuthzRequest, Claims, McpCall } from '../core/types.ts';
import { addChallengeParams, resourceChallengeParams } from './challenge.ts';
import {
  evaluateMcpPost,
  MCP_TOOL_NOT_LISTED,
  mcpRoutePolicy,
  toolNameForLog,
  type McpBodyReason,
  type McpMessage,
  type McpRoutePolicy,
} from './mcp.ts';
import { audienceMatchesResource, resourceLocation } from './resource-id.ts';
import type { McpRouteConfig, ProtectedResourceConfig, StepUpConfig } from './schema.ts';
import { checkStepUp, stepUpPolicy, type StepUpPolicy, type StepUpReason } from './step-up.ts';

/** Each step-up outcome's catalog reason. */
const STEP_UP_DENY = {
  acr_missing: 'step_up_acr_missing',
  acr_not_accepted: 'step_up_acr_not_accepted',
  auth_time_missing: 'step_up_auth_time_missing',
  auth_time_invalid: 'step_up_auth_time_invalid',
  auth_time_too_old: 'step_up_auth_time_too_old',
  auth_time_in_future: 'step_up_auth_time_in_future',
} as const satisfies Record<StepUpReason, DenyReason>;

// The body reasons of mcp.ts are catalog reasons under the same names.
const mcpReason = (r: McpBodyReason): DenyReason => r;
const toolNotListed: DenyReason = MCP_TOOL_NOT_LISTED;

/** The parts of a route the guards read. */
export interface GuardedRouteConfig {
  name: string;
  scopes: readonly string[];
  mcp?: McpRouteConfig;
  step_up?: StepUpConfig;
}

class Guard implements RouteGuard {
  readonly resource?: string;
  readonly noPassthrough: boolean;
  private readonly metadataUrl?: string;
  private readonly stepUpRule?: StepUpPolicy;
  private readonly routeScopes: readonly string[];
  /** Present only on a route with step_up / mcp: decide() skips what a route does not have. */
  readonly stepUp?: RouteGuard['stepUp'];
  readonly mcp?: RouteGuard['mcp'];

  constructor(
    route: GuardedRouteConfig,
    resource: ProtectedResourceConfig | undefined,
    private readonly secrets: SecretShapes,
  ) {
    this.routeScopes = route.scopes;
    if (resource) {
      this.resource = resource.resource;
      this.metadataUrl = resourceLocation(resource.resource).metadataUrl;
    }
    if (route.step_up) {
      const rule = stepUpPolicy(route.step_up);
      this.stepUpRule = rule;
      this.stepUp = (claims, nowMs) => stepUpDeny(rule, claims, nowMs);
    }
    if (route.mcp) {
      const policy = mcpRoutePolicy(route.mcp);
      this.mcp = (req) => this.readMcp(policy, req);
    }
    // MCP authorization: "MCP servers MUST NOT pass through the token" (Token Passthrough).
    this.noPassthrough = route.mcp !== undefined;
  }

  audienceMatches(aud: unknown): boolean {
    return this.resource !== undefined && audienceMatchesResource(aud, this.resource);
  }

  private readMcp(policy: McpRoutePolicy, req: AuthzRequest): McpOutcome | undefined {
    // Streamable HTTP: only a POST carries a message; GET (the SSE stream) and DELETE (ending a
    // session) need the route's scopes alone.
    if (req.method !== 'POST') return undefined;
    const d = evaluateMcpPost(policy, { headers: req.headers, body: req.body, rawBody: req.rawBody });
    if (d.kind === 'refused') return { ok: false, reason: mcpReason(d.reason) };
    if (d.kind === 'tool_not_listed')
      return { ok: false, reason: toolNotListed, call: callOf(d.message, req, this.secrets) };
    return { ok: true, call: callOf(d.message, req, this.secrets, d.pattern), scopes: d.toolScopes };
  }

  challenge(header: string | undefined, error: string, realm: string): string | undefined {
    const stepUp = error === 'insufficient_user_authentication' ? this.stepUpRule : undefined;
    const params = resourceChallengeParams({
      // No credential: the scopes to ask for (MCP authorization, scope selection), when the resource
      // has its metadata to point at; insufficient_scope already names every scope the call needs.
      scope: error === 'missing_credentials' && this.metadataUrl !== undefined ? this.routeScopes : undefined,
      resourceMetadata: this.metadataUrl,
      acrValues: stepUp?.acrValues,
      maxAge: stepUp?.maxAgeSeconds,
    });
    if (params.length === 0) return undefined;
    try {
      // A 403 without a challenge of its own (forbidden) gets a Bearer one naming the metadata.
      return addChallengeParams(header ?? `Bearer realm="${realm}"`, params);
    } catch {
      // Unreachable with a validated config (scopes and ACR values are challenge tokens): the
      // challenge deny() built goes out as it is.
      return undefined;
    }
  }
}

/** Written in place of a tool name shaped like a credential. */
export const REDACTED_TOOL = '[redacted]';

/** What a credential looks like in this config: where requests carry one, and the API-key prefix. */
export interface SecretShapes {
  credentialHeaders: readonly string[];
  apiKeyPrefix: string | null;
}

function stepUpDeny(rule: StepUpPolicy, claims: Claims | undefined, nowMs: number): DenyReason | undefined {
  const r = checkStepUp(rule, { acr: claims?.acr, authTime: claims?.auth_time }, nowMs);
  return r.ok ? undefined : STEP_UP_DENY[r.reason];
}

function callOf(m: McpMessage, req: AuthzRequest, secrets: SecretShapes, pattern?: string): McpCall {
  return {
    method: m.method,
    tool: m.toolName === undefined ? undefined : toolLabel(m.toolName, req, secrets),
    toolPattern: pattern,
  };
}

/**
 * The tool name for logs and Envoy's dynamic metadata (its access log): bounded and printable, and
 * never a credential a client pasted into it (a JWT, an API key, or a credential this request presents).
 */
function toolLabel(name: string, req: AuthzRequest, secrets: SecretShapes): string {
  if (name.includes('eyJ')) return REDACTED_TOOL;
  if (secrets.apiKeyPrefix !== null && name.includes(`${secrets.apiKeyPrefix}_`)) return REDACTED_TOOL;
  for (const h of secrets.credentialHeaders) {
    const v = req.headers[h]?.trim();
    if (v === undefined) continue;
    // The whole value, and what follows an auth scheme (`Bearer <token>`).
    const sp = v.indexOf(' ');
    for (const presented of sp < 0 ? [v] : [v, v.slice(sp + 1).trim()])
      if (presented.length >= 8 && name.includes(presented)) return REDACTED_TOOL;
  }
  return toolNameForLog(name);
}

class Guards implements ResourceGuards {
  constructor(private readonly byRoute: ReadonlyMap<string, RouteGuard>) {}
  forRoute(route: string): RouteGuard | undefined {
    return this.byRoute.get(route);
  }
}

/** The guards of a config, or undefined when no route needs one (decide() then skips them entirely). */
export function compileResourceGuards(
  routes: readonly GuardedRouteConfig[],
  resources: readonly ProtectedResourceConfig[],
  secrets: SecretShapes,
): ResourceGuards | undefined {
  const resourceOf = new Map<string, ProtectedResourceConfig>();
  for (const r of resources) for (const name of r.routes) resourceOf.set(name, r);
  const byRoute = new Map<string, RouteGuard>();
  for (const route of routes) {
    const resource = resourceOf.get(route.name);
    if (!resource && !route.mcp && !route.step_up) continue;
    byRoute.set(route.name, new Guard(route, resource, secrets));
  }
  return byRoute.size ? new Guards(byRoute) : undefined;
}
