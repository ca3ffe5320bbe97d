// Every reason a Check can be decided for, in one catalog: the deny `error` it answers with (and so
// its status and challenge) and what it means. Reasons are metric labels (`reason` of
// portcullis_decisions_total), log fields and dynamic metadata, so they are a closed set: code can
// only produce a reason listed here, and docs/operations.md's reasons table is generated from this
// file (a test fails when it is stale).

/** The deny classes a client sees: the body's `error`, the HTTP status, the challenge. */
export const DENY_ERRORS = {
  missing_credentials: { status: 401, challenge: 'realm', description: 'Authentication is required' },
  invalid_request: { status: 400, challenge: 'invalid_request', description: 'The request is malformed' },
  invalid_token: { status: 401, challenge: 'invalid_token', description: 'The credential is invalid' },
  insufficient_scope: {
    status: 403,
    challenge: 'insufficient_scope',
    description: 'The credential lacks a required scope',
  },
  forbidden: { status: 403, challenge: 'none', description: 'Access to this resource is forbidden' },
  rate_limited: { status: 429, challenge: 'none', description: 'Too many requests' },
  temporarily_unavailable: { status: 503, challenge: 'none', description: 'The service is temporarily unavailable' },
  insufficient_user_authentication: {
    status: 401,
    challenge: 'insufficient_user_authentication',
    description: 'A stronger or more recent authentication is required',
  },
  // RFC 9449, §7.1: the challenge is `DPoP error=…, algs=…` (sender-constraint.ts adds it).
  invalid_dpop_proof: { status: 401, challenge: 'dpop', description: 'The DPoP proof is invalid' },
  use_dpop_nonce: { status: 401, challenge: 'dpop', description: 'A DPoP nonce is required' },
} as const satisfies Record<string, { status: number; challenge: string; description: string }>;

export type DenyError = keyof typeof DENY_ERRORS;
export type DenyStatus = (typeof DENY_ERRORS)[DenyError]['status'];
export type Challenge = (typeof DENY_ERRORS)[DenyError]['challenge'];

/** Why a Check was allowed. */
export const ALLOW_REASONS = {
  allowed: 'a protected route: the credential is valid and holds every required scope',
  public_route: 'a public route: no credential was looked at',
  shadow:
    'a mode: shadow route whose decision (logged, counted) would have been a deny: allowed without identity headers',
} as const;

export type AllowReason = keyof typeof ALLOW_REASONS;

/** Why a Check was denied: the `error` it answers with, and what happened. */
export const DENY_REASONS = {
  // The request itself (docs/security.md): refused before any route is chosen.
  method_invalid: { error: 'invalid_request', meaning: 'the method is empty or not upper-case letters' },
  method_override_header: {
    error: 'invalid_request',
    meaning: 'a method-override header (X-HTTP-Method-Override and spellings) is present',
  },
  method_override_query: {
    error: 'invalid_request',
    meaning: 'a method-override query parameter (`_method` and spellings) is present',
  },
  host_invalid: { error: 'invalid_request', meaning: 'the Host / :authority is not one valid host name or address' },
  path_empty: { error: 'invalid_request', meaning: 'the path is empty' },
  path_too_long: { error: 'invalid_request', meaning: 'the path is longer than 8192 characters' },
  path_not_absolute: { error: 'invalid_request', meaning: 'the path does not start with `/`' },
  path_bad_character: {
    error: 'invalid_request',
    meaning: 'the path has a character outside RFC 3986 path characters (or `;`)',
  },
  path_bad_escape: { error: 'invalid_request', meaning: 'a `%` in the path is not followed by two hex digits' },
  path_encoded_separator: { error: 'invalid_request', meaning: 'the path has an encoded `/`, `\\` or NUL' },
  path_double_encoding: { error: 'invalid_request', meaning: 'the path has an encoded `%` (double encoding)' },
  path_encoded_whitespace: { error: 'invalid_request', meaning: 'the path has encoded whitespace' },
  path_encoded_delimiter: { error: 'invalid_request', meaning: 'the path has an encoded `?`, `#` or `;`' },
  path_encoded_control: { error: 'invalid_request', meaning: 'the path has an encoded control character' },
  path_encoded_invisible: { error: 'invalid_request', meaning: 'the path has an encoded invisible (format) character' },
  path_confusable: {
    error: 'invalid_request',
    meaning: 'the path has an encoded character that normalizes or case-maps to ASCII',
  },
  path_invalid_utf8: { error: 'invalid_request', meaning: 'the path has escapes that are not valid UTF-8' },
  path_empty_segment: { error: 'invalid_request', meaning: 'the path has an empty segment (`//`)' },
  path_dot_segment: { error: 'invalid_request', meaning: 'the path has a `.` or `..` segment' },
  path_trailing_dot: { error: 'invalid_request', meaning: 'a path segment ends with a dot (`admin.`)' },
  query_credential_unremovable: {
    error: 'invalid_request',
    meaning: 'a credential query parameter follows a `;`, where Envoy cannot remove it',
  },
  source_ip_invalid: {
    error: 'invalid_request',
    meaning: 'source_ip_header does not hold a valid client address at the trusted hop',
  },

  // Finding the one credential (docs/security.md, "One credential").
  missing_credentials: { error: 'missing_credentials', meaning: 'a protected route and no credential' },
  authorization_repeated: { error: 'invalid_request', meaning: 'more than one Authorization header' },
  authorization_empty: { error: 'invalid_request', meaning: 'an empty Authorization header' },
  authorization_scheme_unsupported: {
    error: 'invalid_request',
    meaning: 'an Authorization scheme other than Bearer (or ApiKey when API keys are on)',
  },
  bearer_empty: { error: 'invalid_request', meaning: '`Bearer` without a token' },
  bearer_syntax: { error: 'invalid_request', meaning: 'the bearer token is not RFC 6750 token68 syntax' },
  apikey_syntax: { error: 'invalid_request', meaning: '`ApiKey` without a key, or with spaces' },
  api_key_header_repeated: { error: 'invalid_request', meaning: 'the API-key header is repeated' },
  api_key_empty: { error: 'invalid_request', meaning: 'the API-key header or parameter is empty' },
  api_key_query_repeated: { error: 'invalid_request', meaning: 'the API-key query parameter is repeated' },
  query_bad_escape: { error: 'invalid_request', meaning: 'the API-key query parameter does not percent-decode' },
  multiple_credentials: {
    error: 'invalid_request',
    meaning: 'more than one credential (header, query or kinds) in one request',
  },
  access_token_in_query: {
    error: 'invalid_request',
    meaning: 'an `access_token` query parameter (tokens in URLs are never accepted)',
  },
  credential_too_large: {
    error: 'invalid_token',
    meaning: 'the credential is longer than credentials.max_credential_bytes',
  },
  credential_kind_not_accepted: {
    error: 'invalid_token',
    meaning: "the credential's kind is not in the route's `auth` list",
  },
  api_key_not_configured: { error: 'invalid_token', meaning: 'an API key, and credentials.api_key is not configured' },
  jwt_not_configured: { error: 'invalid_token', meaning: 'a JWT, and credentials.jwt is not configured' },
  introspection_not_configured: {
    error: 'invalid_token',
    meaning: 'an opaque token, and credentials.introspection is not configured',
  },

  // Routes.
  no_route: { error: 'forbidden', meaning: 'no route matches (default deny)' },
  context_route_unknown: {
    error: 'forbidden',
    meaning: 'Envoy named a route (portcullis.route) that the config does not have',
  },
  scope_missing: {
    error: 'insufficient_scope',
    meaning: 'the credential lacks a scope the route (or portcullis.scopes) requires',
  },
  condition_failed: { error: 'forbidden', meaning: "one of the route's when conditions is false (logs name it)" },
  condition_error: {
    error: 'forbidden',
    meaning: "one of the route's when conditions could not be evaluated: an absent claim, a value of the wrong type",
  },

  // Identity values on their way to the upstream (docs/security.md, "Identity header values").
  identity_value_unsafe: {
    error: 'invalid_token',
    meaning: 'an identity value is outside the safe header form and its header is not percent_encode',
  },
  identity_value_too_long: {
    error: 'invalid_token',
    meaning: "an identity value is longer than its header's max_length",
  },
  claims_too_large: {
    error: 'invalid_token',
    meaning: "the token's claims (JWT payload or introspection answer) are larger than identity.claims may be",
  },
  claims_too_deep: {
    error: 'invalid_token',
    meaning: "the token's claims nest deeper than identity.claims may",
  },
  claims_invalid: {
    error: 'invalid_token',
    meaning: "the token's claims are not a JSON object of JSON values",
  },
  identity_value_invalid_unicode: {
    error: 'invalid_token',
    meaning: 'an identity value is not well-formed Unicode (no UTF-8 form)',
  },

  // API keys (docs/api-keys.md).
  api_key_malformed: { error: 'invalid_token', meaning: 'wrong shape or checksum: refused without a store lookup' },
  api_key_unknown: { error: 'invalid_token', meaning: 'no key with this hash in the store' },
  api_key_revoked: { error: 'invalid_token', meaning: 'the key was revoked' },
  api_key_expired: { error: 'invalid_token', meaning: "the key's expires_at has passed (or does not parse)" },
  api_key_record_invalid: {
    error: 'invalid_token',
    meaning: "the key's record fails the key-record schema and is locked out",
  },
  api_key_route_not_allowed: { error: 'forbidden', meaning: "the key's routes do not include this route" },
  api_key_source_not_allowed: { error: 'forbidden', meaning: "the client address is outside the key's cidrs" },

  // JWT access tokens (docs/jwt.md).
  jwt_malformed: { error: 'invalid_token', meaning: 'not three dot-separated segments' },
  jwt_encrypted_unsupported: {
    error: 'invalid_token',
    meaning: 'a JWE (five segments): encrypted tokens are not accepted',
  },
  jwt_header_malformed: { error: 'invalid_token', meaning: 'the header is not a JSON object' },
  jwt_payload_malformed: { error: 'invalid_token', meaning: 'the payload is not a JSON object' },
  jwt_base64_invalid: { error: 'invalid_token', meaning: 'a segment is not canonical base64url' },
  jwt_utf8_invalid: { error: 'invalid_token', meaning: 'a segment is not valid UTF-8, or holds a lone surrogate' },
  jwt_signature_missing: { error: 'invalid_token', meaning: 'the signature segment is empty' },
  jwt_alg_missing: { error: 'invalid_token', meaning: 'the header has no `alg`' },
  jwt_alg_none: { error: 'invalid_token', meaning: '`alg: none`' },
  jwt_alg_hmac: { error: 'invalid_token', meaning: 'an HMAC `alg` (HS*): never accepted' },
  jwt_header_key_reference: { error: 'invalid_token', meaning: 'the header names its own key (jku, x5u, jwk, x5c)' },
  jwt_crit_unsupported: { error: 'invalid_token', meaning: 'the header has `crit`' },
  jwt_b64_unsupported: { error: 'invalid_token', meaning: 'the header has `b64` (unencoded payload)' },
  jwt_nested_unsupported: { error: 'invalid_token', meaning: 'the header has `cty` (nested JWT)' },
  jwt_kid_invalid: { error: 'invalid_token', meaning: '`kid` is not a string of 1-256 characters' },
  jwt_typ_invalid: { error: 'invalid_token', meaning: '`typ` is not a string' },
  jwt_issuer_unknown: { error: 'invalid_token', meaning: '`iss` names no configured issuer' },
  jwt_alg_not_allowed: { error: 'invalid_token', meaning: "`alg` is not in the issuer's algorithms" },
  jwt_typ_missing: { error: 'invalid_token', meaning: 'no `typ` and the issuer does not allow_missing_typ' },
  jwt_typ_not_allowed: { error: 'invalid_token', meaning: "`typ` is not in the issuer's token_types" },
  jwt_issuer_mismatch: { error: 'invalid_token', meaning: '`iss` is not exactly the issuer' },
  jwt_audience_missing: { error: 'invalid_token', meaning: 'no `aud`' },
  jwt_audience_invalid: { error: 'invalid_token', meaning: '`aud` is not a string or a list of strings' },
  jwt_audience_mismatch: { error: 'invalid_token', meaning: '`aud` names none of the configured audiences' },
  jwt_exp_missing: { error: 'invalid_token', meaning: 'no `exp`' },
  jwt_exp_invalid: { error: 'invalid_token', meaning: '`exp` is not a finite number' },
  jwt_nbf_invalid: { error: 'invalid_token', meaning: '`nbf` is not a finite number' },
  jwt_iat_invalid: { error: 'invalid_token', meaning: '`iat` is not a finite number' },
  jwt_expired: { error: 'invalid_token', meaning: '`exp` has passed (with clock_skew_seconds)' },
  jwt_not_yet_valid: { error: 'invalid_token', meaning: '`nbf` is in the future (with clock_skew_seconds)' },
  jwt_issued_in_future: { error: 'invalid_token', meaning: '`iat` is in the future (with clock_skew_seconds)' },
  jwt_lifetime_too_long: {
    error: 'invalid_token',
    meaning: '`exp` is further than max_lifetime_seconds from `iat` or now',
  },
  jwt_id_token: {
    error: 'invalid_token',
    meaning: 'an ID token (nonce, at_hash, c_hash or s_hash), not an access token',
  },
  jwt_sub_missing: { error: 'invalid_token', meaning: 'no `sub` (required_claims)' },
  jwt_client_id_missing: { error: 'invalid_token', meaning: 'no `client_id` (required_claims)' },
  jwt_iat_missing: { error: 'invalid_token', meaning: 'no `iat` (required_claims)' },
  jwt_jti_missing: { error: 'invalid_token', meaning: 'no `jti` (required_claims)' },
  jwt_required_claim_missing: { error: 'invalid_token', meaning: 'another claim named in required_claims is missing' },
  jwt_claim_type_invalid: {
    error: 'invalid_token',
    meaning: '`sub`, `client_id`, `jti` or the subject claim is not a non-empty string',
  },
  jwt_scope_claim_invalid: {
    error: 'invalid_token',
    meaning: 'the scope claim has the wrong type or a malformed scope',
  },
  jwt_kid_unknown: {
    error: 'invalid_token',
    meaning: "`kid` is not in the issuer's JWKS (after a refetch, if the cooldown allowed one)",
  },
  jwt_kid_missing: { error: 'invalid_token', meaning: 'no `kid` and more than one key could have signed' },
  jwt_key_alg_mismatch: { error: 'invalid_token', meaning: 'the key named by `kid` is not for this `alg`' },
  jwt_signature_invalid: { error: 'invalid_token', meaning: 'the signature does not verify' },
  jwks_not_loaded: { error: 'temporarily_unavailable', meaning: "the issuer's JWKS has not loaded yet" },
  jwks_refresh_pending: {
    error: 'temporarily_unavailable',
    meaning: 'an unknown `kid` is being fetched and did not arrive within unknown_kid_wait_ms',
  },
  jwks_unavailable: {
    error: 'temporarily_unavailable',
    meaning: 'an unknown `kid` and the issuer is unreachable (it may be a new key)',
  },

  // Opaque tokens by introspection (docs/opaque-tokens.md).
  token_inactive: { error: 'invalid_token', meaning: 'the authorization server says `active: false`' },
  token_type_unsupported: {
    error: 'invalid_token',
    meaning: 'the server answered unsupported_token_type (not a token it issued)',
  },
  introspection_active_not_boolean: { error: 'invalid_token', meaning: '`active` is missing or not the boolean true' },
  token_not_access_token: {
    error: 'invalid_token',
    meaning: '`token_type` / `token_use` says it is not an access token',
  },
  token_type_missing: { error: 'invalid_token', meaning: 'no `token_type` and require_token_type is on' },
  token_exp_invalid: { error: 'invalid_token', meaning: '`exp` is not a finite number' },
  token_expired: { error: 'invalid_token', meaning: '`exp` has passed' },
  token_nbf_invalid: { error: 'invalid_token', meaning: '`nbf` is not a finite number' },
  token_not_yet_valid: { error: 'invalid_token', meaning: '`nbf` is in the future' },
  token_iat_invalid: { error: 'invalid_token', meaning: '`iat` is not a finite number' },
  token_iat_in_future: { error: 'invalid_token', meaning: '`iat` is in the future' },
  token_iss_invalid: { error: 'invalid_token', meaning: '`iss` is not a string' },
  token_issuer_mismatch: { error: 'invalid_token', meaning: '`iss` is not the configured issuer' },
  token_aud_invalid: { error: 'invalid_token', meaning: '`aud` is not a string or a list of strings' },
  token_audience_missing: { error: 'invalid_token', meaning: 'no `aud` and require_audience is on' },
  token_audience_mismatch: { error: 'invalid_token', meaning: '`aud` names none of the configured audiences' },
  token_scope_invalid: { error: 'invalid_token', meaning: '`scope` is not a string' },
  token_client_id_invalid: { error: 'invalid_token', meaning: '`client_id` is not a non-empty string' },
  token_sub_invalid: { error: 'invalid_token', meaning: '`sub` is not a non-empty string' },
  token_claim_not_unicode: {
    error: 'invalid_token',
    meaning: '`sub`, `client_id`, `iss` or `scope` is not well-formed Unicode',
  },
  introspection_timeout: { error: 'temporarily_unavailable', meaning: 'the endpoint did not answer within timeout_ms' },
  introspection_unreachable: { error: 'temporarily_unavailable', meaning: 'the endpoint could not be reached' },
  introspection_response_too_large: { error: 'temporarily_unavailable', meaning: 'the answer is larger than 64 KiB' },
  introspection_http_5xx: { error: 'temporarily_unavailable', meaning: 'the endpoint answered 5xx' },
  introspection_http_status: {
    error: 'temporarily_unavailable',
    meaning: "the endpoint answered another non-200 status (often: it refused Portcullis's client credentials)",
  },
  introspection_not_json: { error: 'temporarily_unavailable', meaning: 'the answer is not application/json' },
  introspection_bad_json: { error: 'temporarily_unavailable', meaning: 'the answer does not parse as JSON' },
  introspection_not_object: { error: 'temporarily_unavailable', meaning: 'the answer is not a JSON object' },
  introspection_concurrency_limit: {
    error: 'temporarily_unavailable',
    meaning: 'max_concurrency introspection calls are already in flight',
  },
  introspection_rate_limit: {
    error: 'temporarily_unavailable',
    meaning: 'max_per_second introspection calls were made this second',
  },

  // Rate limits, stores, and the service itself.
  rate_limited: { error: 'rate_limited', meaning: "the route's rate limit is spent for this window" },
  rate_limiter_unavailable: {
    error: 'temporarily_unavailable',
    meaning: 'the rate limiter (Redis) failed and on_redis_error is deny',
  },
  keystore_redis_unavailable: {
    error: 'temporarily_unavailable',
    meaning: 'the Redis key store is not loaded or not connected, and the key is not in the local copy',
  },
  redis_unavailable: { error: 'temporarily_unavailable', meaning: 'a Redis command could not be sent (not connected)' },
  redis_timeout: {
    error: 'temporarily_unavailable',
    meaning: 'a Redis command took longer than redis.command_timeout_ms',
  },
  redis_error: { error: 'temporarily_unavailable', meaning: 'Redis answered a command with an error' },
  internal_error: {
    error: 'temporarily_unavailable',
    meaning: 'an unexpected error (a bug): logged at error level with its stack',
  },

  // Forward-auth calls (docs/forward-auth.md).
  forward_auth_untrusted_peer: { error: 'forbidden', meaning: 'the caller is not in forward_auth.trusted_proxies' },
  forward_auth_header_repeated: {
    error: 'invalid_request',
    meaning: 'a forwarding header (X-Original-URI, X-Forwarded-*) is repeated',
  },
  forward_auth_host_repeated: { error: 'invalid_request', meaning: 'the Host header is repeated' },
  forward_auth_style_ambiguous: { error: 'invalid_request', meaning: 'the call matches more than one proxy style' },
  forward_auth_original_request_missing: {
    error: 'invalid_request',
    meaning: 'neither X-Original-URI nor X-Forwarded-Uri is present',
  },
  forward_auth_method_missing: { error: 'invalid_request', meaning: 'the original method header is missing' },
  forward_auth_target_invalid: {
    error: 'invalid_request',
    meaning: 'the request target is neither the prefix nor under it',
  },
  forward_auth_uri_invalid: { error: 'invalid_request', meaning: 'the original URI does not start with `/`' },
  forward_auth_host_missing: { error: 'invalid_request', meaning: 'the original host is missing' },

  // Protected resources, MCP routes and step-up (docs/mcp.md).
  resource_audience_mismatch: {
    error: 'invalid_token',
    meaning:
      "`aud` does not name the route's protected resource (RFC 8707): a token for another resource or the whole API",
  },
  step_up_acr_missing: { error: 'insufficient_user_authentication', meaning: 'step_up.acr_values and no `acr`' },
  step_up_acr_not_accepted: {
    error: 'insufficient_user_authentication',
    meaning: '`acr` is not one of step_up.acr_values',
  },
  step_up_auth_time_missing: {
    error: 'insufficient_user_authentication',
    meaning: 'step_up.max_age_seconds and no `auth_time`',
  },
  step_up_auth_time_invalid: {
    error: 'insufficient_user_authentication',
    meaning: '`auth_time` is not a non-negative number',
  },
  step_up_auth_time_too_old: {
    error: 'insufficient_user_authentication',
    meaning: '`auth_time` is older than step_up.max_age_seconds (with clock_skew_seconds)',
  },
  step_up_auth_time_in_future: {
    error: 'invalid_token',
    meaning: '`auth_time` is in the future (with clock_skew_seconds): the token contradicts itself',
  },
  mcp_body_missing: { error: 'invalid_request', meaning: 'an MCP POST without a body' },
  mcp_body_not_buffered: {
    error: 'temporarily_unavailable',
    meaning: 'an MCP POST declares a body Envoy did not send: with_request_body is not configured for the route',
  },
  mcp_body_truncated: {
    error: 'invalid_request',
    meaning:
      'Envoy cut the body at max_request_bytes (x-envoy-auth-partial-body: true), or it is shorter than Content-Length',
  },
  mcp_body_length_mismatch: { error: 'invalid_request', meaning: 'the body is longer than Content-Length says' },
  mcp_body_too_large: { error: 'invalid_request', meaning: 'the body is larger than mcp.max_body_bytes' },
  mcp_body_ambiguous: { error: 'invalid_request', meaning: 'both body and raw_body were sent' },
  mcp_body_encoded: { error: 'invalid_request', meaning: 'the body has a Content-Encoding' },
  mcp_body_not_utf8: { error: 'invalid_request', meaning: 'the body is not UTF-8' },
  mcp_body_not_json: { error: 'invalid_request', meaning: 'the body is not JSON' },
  mcp_batch_not_supported: { error: 'invalid_request', meaning: 'a JSON-RPC batch (removed from MCP)' },
  mcp_body_not_object: { error: 'invalid_request', meaning: 'the body is JSON but not an object' },
  mcp_duplicate_member: { error: 'invalid_request', meaning: 'an object of the body names a member twice' },
  mcp_jsonrpc_version: { error: 'invalid_request', meaning: '`jsonrpc` is not "2.0"' },
  mcp_method_missing: { error: 'invalid_request', meaning: 'no `method` (a response, or not JSON-RPC)' },
  mcp_method_invalid: { error: 'invalid_request', meaning: '`method` is empty, too long or not visible ASCII' },
  mcp_id_invalid: { error: 'invalid_request', meaning: '`id` is not a string or an integer' },
  mcp_params_invalid: { error: 'invalid_request', meaning: '`params` is not an object' },
  mcp_tool_name_missing: { error: 'invalid_request', meaning: 'a tools/call without `params.name`' },
  mcp_tool_name_invalid: { error: 'invalid_request', meaning: 'the tool name is too long or has control characters' },
  mcp_header_mismatch: {
    error: 'invalid_request',
    meaning: 'Mcp-Method or Mcp-Name says something else than the body',
  },
  mcp_header_missing: { error: 'invalid_request', meaning: 'Mcp-Method is present and Mcp-Name is missing' },
  mcp_header_invalid: { error: 'invalid_request', meaning: 'Mcp-Method or Mcp-Name is not a valid value' },
  mcp_tool_not_listed: {
    error: 'forbidden',
    meaning: 'a tools/call of a tool no mcp.tools pattern matches, and unlisted_tools is deny',
  },

  // Proof of possession (docs/proof-of-possession.md): the DPoP proof (RFC 9449, §4.3).
  dpop_token_empty: { error: 'invalid_request', meaning: '`DPoP` without a token' },
  dpop_token_syntax: { error: 'invalid_request', meaning: 'the DPoP-scheme token is not RFC 6750 token68 syntax' },
  dpop_proof_missing: { error: 'invalid_dpop_proof', meaning: '`Authorization: DPoP` without a `DPoP` header' },
  dpop_proof_multiple: { error: 'invalid_dpop_proof', meaning: 'more than one `DPoP` header' },
  dpop_proof_too_large: { error: 'invalid_dpop_proof', meaning: 'the `DPoP` header is larger than max_proof_bytes' },
  dpop_proof_malformed: { error: 'invalid_dpop_proof', meaning: 'the proof is not a compact JWS of JSON objects' },
  dpop_typ_invalid: { error: 'invalid_dpop_proof', meaning: 'the proof `typ` is not `dpop+jwt`' },
  dpop_alg_not_allowed: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof `alg` is not in credentials.dpop.algorithms (none and HS* never are)',
  },
  dpop_jwk_invalid: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof `jwk` is missing, has a private member, or is not a public key for its `alg`',
  },
  dpop_signature_invalid: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof signature does not verify with its `jwk`',
  },
  dpop_claim_missing: { error: 'invalid_dpop_proof', meaning: 'the proof lacks `jti`, `htm`, `htu`, `iat` or `ath`' },
  dpop_claim_invalid: { error: 'invalid_dpop_proof', meaning: 'a proof claim has the wrong type or is too long' },
  dpop_htm_mismatch: { error: 'invalid_dpop_proof', meaning: 'the proof `htm` is not the request method' },
  dpop_htu_mismatch: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof `htu` is not the request URI (see credentials.dpop.external_origin)',
  },
  dpop_iat_invalid: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof `iat` is older than max_age_seconds or in the future',
  },
  dpop_ath_mismatch: { error: 'invalid_dpop_proof', meaning: 'the proof `ath` is not the hash of the access token' },
  dpop_replayed: {
    error: 'invalid_dpop_proof',
    meaning: 'the proof `jti` was already used (here or on another replica)',
  },
  dpop_nonce_required: { error: 'use_dpop_nonce', meaning: 'nonce: required and the proof has no `nonce`' },
  dpop_nonce_invalid: { error: 'use_dpop_nonce', meaning: 'the proof `nonce` is not a current server nonce' },
  // The binding of token to key or certificate (RFC 9449, §6, §7.2; RFC 8705, §3).
  dpop_key_mismatch: { error: 'invalid_token', meaning: "the proof key is not the token's `cnf.jkt`" },
  dpop_token_not_bound: { error: 'invalid_token', meaning: 'a token sent as `DPoP` has no `cnf.jkt`' },
  dpop_bound_token_as_bearer: { error: 'invalid_token', meaning: 'a DPoP-bound token (`cnf.jkt`) sent as `Bearer`' },
  dpop_required: { error: 'invalid_token', meaning: 'sender_constraint dpop and the token is not sent with DPoP' },
  cnf_invalid: { error: 'invalid_token', meaning: 'the token `cnf` is not an object with a valid `jkt` or `x5t#S256`' },
  cnf_unsupported: { error: 'invalid_token', meaning: 'the token is bound by a `cnf` member Portcullis cannot check' },
  cnf_x5t_mismatch: { error: 'invalid_token', meaning: 'the token `cnf["x5t#S256"]` is not the client certificate' },
  mtls_binding_required: {
    error: 'invalid_token',
    meaning: 'sender_constraint mtls and the token is not certificate-bound',
  },
  sender_constraint_required: {
    error: 'invalid_token',
    meaning: 'sender_constraint any and the token is neither DPoP- nor certificate-bound',
  },
  // The client certificate (certificate-bound tokens and the mtls credential).
  mtls_certificate_missing: { error: 'invalid_token', meaning: 'a certificate-bound token and no client certificate' },
  mtls_certificate_source_untrusted: {
    error: 'invalid_token',
    meaning: 'the XFCC element was not written by a proxy in client_certificate.by',
  },
  mtls_certificate_multiple: { error: 'invalid_request', meaning: 'more than one client-certificate header value' },
  mtls_certificate_malformed: { error: 'invalid_request', meaning: 'the client certificate could not be read' },
  mtls_certificate_expired: {
    error: 'invalid_token',
    meaning: 'the client certificate has expired (checked again here)',
  },
  mtls_certificate_not_yet_valid: { error: 'invalid_token', meaning: 'the client certificate is not valid yet' },
  mtls_chain_untrusted: { error: 'invalid_token', meaning: 'the client certificate does not chain to a CA in ca_file' },
  mtls_spiffe_id_invalid: {
    error: 'invalid_token',
    meaning: 'the client certificate has no valid SPIFFE ID (exactly one URI SAN)',
  },
  mtls_trust_domain_not_allowed: {
    error: 'forbidden',
    meaning: 'the SPIFFE ID is from a trust domain not in credentials.mtls.trust_domains',
  },
  mtls_subject_invalid: {
    error: 'invalid_token',
    meaning: 'the subject lacks credentials.mtls.subject_field, has it twice, or its value is unusable',
  },
  mtls_not_configured: {
    error: 'invalid_token',
    meaning: 'a client certificate, and credentials.mtls is not configured',
  },
} as const satisfies Record<string, { error: DenyError; meaning: string }>;

export type DenyReason = keyof typeof DENY_REASONS;

/** The reasons that answer with deny error `E`. */
export type ReasonFor<E extends DenyError> = {
  [R in DenyReason]: (typeof DENY_REASONS)[R]['error'] extends E ? R : never;
}[DenyReason];

export type InvalidRequestReason = ReasonFor<'invalid_request'>;
export type InvalidTokenReason = ReasonFor<'invalid_token'>;
export type ForbiddenReason = ReasonFor<'forbidden'>;
export type UnavailableReason = ReasonFor<'temporarily_unavailable'>;

/** Whether `s` is a reason of the catalog (for values read back from outside: a shared cache). */
export function isDenyReason(s: unknown): s is DenyReason {
  return typeof s === 'string' && Object.hasOwn(DENY_REASONS, s);
}

/** The deny error a reason answers with. */
export function errorOf(reason: DenyReason): DenyError {
  return DENY_REASONS[reason].error;
}
