// Schemas for the control-plane resources no npm package models, written from their API
// definitions and strict wherever deploy/ sets fields, so a misspelled or misplaced field fails:
//   - Envoy Gateway's SecurityPolicy (extAuth) and ClientTrafficPolicy (headers, path), from
//     api/v1alpha1 (ext_auth_types.go, securitypolicy_types.go, clienttrafficpolicy_types.go,
//     shared_types.go) as documented in https://gateway.envoyproxy.io/docs/api/extension_types/
//     (v1.8: statusOnError; v1.7: contextExtensions, removeOnMatch).
//   - Istio's MeshConfig.ExtensionProvider (envoyExtAuthzGrpc), from mesh/v1alpha1/config.proto,
//     https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig-ExtensionProvider
// Fields of those APIs that deploy/ does not use are accepted as `unknown`: the schemas check what
// the recipes say, not the whole API.
import { z } from 'zod';

const open = z.unknown().optional();

// Gateway API Duration (GEP-2257), the type of Envoy Gateway's timeouts.
// https://gateway-api.sigs.k8s.io/reference/spec/#duration
const gatewayDuration = z.string().regex(/^([0-9]{1,5}(h|m|s|ms)){1,4}$/, 'a Gateway API Duration such as 250ms or 1s');

const metadata = z.strictObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

// LocalPolicyTargetReferenceWithSectionName
const targetRef = z.strictObject({
  group: z.string(),
  kind: z.string(),
  name: z.string().min(1),
  sectionName: z.string().optional(),
});

const policyTargets = {
  targetRef: targetRef.optional(),
  targetRefs: z.array(targetRef).optional(),
  targetSelectors: open,
};

// BackendRef (shared_types.go): a BackendObjectReference plus weight and fallback.
const backendRef = z.strictObject({
  group: z.string().optional(),
  kind: z.enum(['Service', 'Backend']).optional(),
  name: z.string().min(1),
  namespace: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  weight: z.number().int().min(0).optional(),
  fallback: z.boolean().optional(),
});

// ActiveHealthCheck (healthcheck_types.go)
const activeHealthCheck = z
  .strictObject({
    type: z.enum(['HTTP', 'TCP', 'GRPC']),
    timeout: gatewayDuration.optional(),
    interval: gatewayDuration.optional(),
    initialJitter: gatewayDuration.optional(),
    unhealthyThreshold: z.number().int().min(0).optional(),
    healthyThreshold: z.number().int().min(0).optional(),
    http: open,
    tcp: open,
    grpc: z.strictObject({ service: z.string().optional() }).optional(),
    overrides: open,
  })
  .refine(
    (a) => a.type !== 'GRPC' || (a.http === undefined && a.tcp === undefined),
    'a GRPC health check takes only grpc settings',
  );

// ClusterSettings (shared_types.go), as BackendCluster.backendSettings
const clusterSettings = z.strictObject({
  loadBalancer: open,
  retry: open,
  proxyProtocol: open,
  tcpKeepalive: open,
  healthCheck: z.strictObject({ active: activeHealthCheck.optional(), passive: open, panicThreshold: open }).optional(),
  circuitBreaker: open,
  timeout: open,
  connection: open,
  dns: open,
  http2: open,
});

const grpcExtAuthService = z
  .strictObject({
    backendRef: backendRef.optional(), // deprecated: backendRefs
    backendRefs: z.array(backendRef).min(1).optional(),
    backendSettings: clusterSettings.optional(),
  })
  .refine(
    (g) => (g.backendRef === undefined) !== (g.backendRefs === undefined),
    'exactly one of backendRef (deprecated) or backendRefs',
  );

// ContextExtension (ext_auth_types.go, v1.7+)
export const contextExtension = z
  .strictObject({
    name: z.string().min(1),
    type: z.enum(['Value', 'ValueRef']).default('Value'),
    value: z.string().optional(),
    valueRef: z
      .strictObject({ group: z.string().optional(), kind: z.string(), name: z.string(), key: z.string() })
      .optional(),
  })
  .refine(
    (c) =>
      c.type === 'Value'
        ? c.value !== undefined && c.valueRef === undefined
        : c.valueRef !== undefined && c.value === undefined,
    {
      error: 'type Value takes value, type ValueRef takes valueRef',
    },
  );

// ExtAuth (ext_auth_types.go): exactly one of grpc or http.
export const extAuth = z
  .strictObject({
    grpc: grpcExtAuthService.optional(),
    http: open,
    headersToExtAuth: z.array(z.string()).optional(),
    bodyToExtAuth: open,
    timeout: gatewayDuration.optional(),
    failOpen: z.boolean().optional(),
    recomputeRoute: z.boolean().optional(),
    includeRouteMetadata: z.boolean().optional(),
    contextExtensions: z.array(contextExtension).optional(),
    // "Only 4xx and 5xx status codes are supported."
    statusOnError: z.number().int().min(400).max(599).optional(),
  })
  .refine((e) => (e.grpc === undefined) !== (e.http === undefined), 'exactly one of grpc or http');

export const securityPolicy = z.strictObject({
  apiVersion: z.literal('gateway.envoyproxy.io/v1alpha1'),
  kind: z.literal('SecurityPolicy'),
  metadata,
  spec: z
    .strictObject({
      ...policyTargets,
      mergeType: z.enum(['StrategicMerge', 'JSONMerge']).optional(),
      apiKeyAuth: open,
      cors: open,
      basicAuth: open,
      jwt: open,
      oidc: open,
      extAuth: extAuth.optional(),
      authorization: open,
    })
    .refine(
      (s) => (s.targetRefs?.length ?? 0) + (s.targetRef ? 1 : 0) + (s.targetSelectors ? 1 : 0) > 0,
      'a target: targetRefs, targetRef or targetSelectors',
    ),
});

// StringMatch (shared_types.go)
const stringMatch = z.strictObject({
  type: z.enum(['Exact', 'Prefix', 'Suffix', 'RegularExpression']).default('Exact'),
  value: z.string().min(1),
});
const httpHeader = z.strictObject({ name: z.string().min(1), value: z.string() });

// HTTPHeaderFilter (shared_types.go), as HeaderSettings.earlyRequestHeaders
const httpHeaderFilter = z.strictObject({
  set: z.array(httpHeader).optional(),
  add: z.array(httpHeader).optional(),
  addIfAbsent: z.array(httpHeader).optional(),
  remove: z.array(z.string().min(1)).optional(),
  removeOnMatch: z.array(stringMatch).optional(),
});

export const clientTrafficPolicy = z.strictObject({
  apiVersion: z.literal('gateway.envoyproxy.io/v1alpha1'),
  kind: z.literal('ClientTrafficPolicy'),
  metadata,
  spec: z.strictObject({
    ...policyTargets,
    tcpKeepalive: open,
    enableProxyProtocol: open,
    proxyProtocol: open,
    clientIPDetection: open,
    tls: open,
    // PathSettings
    path: z
      .strictObject({
        escapedSlashesAction: z
          .enum(['KeepUnchanged', 'RejectRequest', 'UnescapeAndRedirect', 'UnescapeAndForward'])
          .optional(),
        disableMergeSlashes: z.boolean().optional(),
      })
      .optional(),
    // HeaderSettings
    headers: z
      .strictObject({
        enableEnvoyHeaders: z.boolean().optional(),
        disableRateLimitHeaders: z.boolean().optional(),
        xForwardedClientCert: open,
        withUnderscoresAction: z.enum(['Allow', 'RejectRequest', 'DropHeader']).optional(),
        preserveXRequestID: z.boolean().optional(),
        requestID: open,
        earlyRequestHeaders: httpHeaderFilter.optional(),
        lateResponseHeaders: open,
      })
      .optional(),
    timeout: open,
    connection: open,
    http1: open,
    http2: open,
    http3: open,
    grpc: open,
    healthCheck: open,
    scheme: open,
  }),
});

/** The Envoy Gateway schema for an object, by kind; undefined for kinds this file does not cover. */
export function envoyGatewaySchema(kind: string): z.ZodType | undefined {
  return ({ SecurityPolicy: securityPolicy, ClientTrafficPolicy: clientTrafficPolicy } as Record<string, z.ZodType>)[
    kind
  ];
}

// ---- Istio mesh config --------------------------------------------------------------------------

// A google.protobuf.Duration in its JSON form ("0.25s"), which is how Istio reads the mesh config.
const protoDuration = z.string().regex(/^[0-9]+(\.[0-9]{1,9})?s$/, 'a protobuf Duration such as 0.25s');

// EnvoyExternalAuthorizationRequestBody
const requestBody = z.strictObject({
  maxRequestBytes: z.number().int().min(0).optional(),
  allowPartialMessage: z.boolean().optional(),
  packAsBytes: z.boolean().optional(),
});

// EnvoyExternalAuthorizationGrpcProvider. (No includeRequestHeadersInCheck: that is the HTTP
// provider's; the gRPC provider sends every header.)
export const envoyExtAuthzGrpc = z.strictObject({
  service: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  timeout: protoDuration.optional(),
  failOpen: z.boolean().optional(),
  // A string in the API ("503"); Istio rejects codes Envoy's StatusCode enum does not know.
  statusOnError: z
    .string()
    .regex(/^[1-5][0-9]{2}$/, 'an HTTP status code as a string, such as "503"')
    .optional(),
  includeRequestBodyInCheck: requestBody.optional(),
});

export const extensionProvider = z
  .strictObject({
    name: z.string().min(1),
    envoyExtAuthzGrpc: envoyExtAuthzGrpc.optional(),
    envoyExtAuthzHttp: open,
  })
  .refine(
    (p) => (p.envoyExtAuthzGrpc === undefined) !== (p.envoyExtAuthzHttp === undefined),
    'exactly one ext_authz provider',
  );

/** The part of MeshConfig the recipes set. */
export const meshConfig = z.strictObject({ extensionProviders: z.array(extensionProvider).min(1) });

/** Every problem zod finds, as "path: message" lines (empty when the value fits). */
export function problems(schema: z.ZodType, value: unknown): string[] {
  const r = schema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}
