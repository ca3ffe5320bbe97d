// Every deny the service can give, in one place, with its status and challenge (the README's table
// "How a request is decided" is this file).
import type { Deny, DenyError, HeaderSet, Identity, CredentialKind } from './types.ts';

type Challenge = 'realm' | 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'none';

export const DENY_TABLE: Record<DenyError, { status: Deny['status']; challenge: Challenge; description: string }> = {
  missing_credentials: { status: 401, challenge: 'realm', description: 'Authentication is required' },
  invalid_request: { status: 400, challenge: 'invalid_request', description: 'The request is malformed' },
  invalid_token: { status: 401, challenge: 'invalid_token', description: 'The credential is invalid' },
  insufficient_scope: { status: 403, challenge: 'insufficient_scope', description: 'The credential lacks a required scope' },
  forbidden: { status: 403, challenge: 'none', description: 'Access to this resource is forbidden' },
  rate_limited: { status: 429, challenge: 'none', description: 'Too many requests' },
  temporarily_unavailable: { status: 503, challenge: 'none', description: 'The service is temporarily unavailable' },
};

export interface DenyDetails {
  reason: string;
  description?: string;
  route?: string;
  identity?: Identity;
  credential?: CredentialKind;
  /** insufficient_scope: the scopes the route requires. */
  scope?: readonly string[];
  retryAfterSeconds?: number;
  extraHeaders?: HeaderSet[];
}

function challenge(kind: Challenge, realm: string, scope?: readonly string[]): string | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'realm':
      return `Bearer realm="${realm}"`;
    case 'insufficient_scope':
      return `Bearer realm="${realm}", error="insufficient_scope", scope="${(scope ?? []).join(' ')}"`;
    default:
      return `Bearer realm="${realm}", error="${kind}"`;
  }
}

export function deny(error: DenyError, realm: string, d: DenyDetails): Deny {
  const row = DENY_TABLE[error];
  const responseHeaders: HeaderSet[] = [];
  const wwwAuthenticate = challenge(row.challenge, realm, d.scope);
  if (wwwAuthenticate) responseHeaders.push({ name: 'www-authenticate', value: wwwAuthenticate });
  if (d.retryAfterSeconds !== undefined) responseHeaders.push({ name: 'retry-after', value: String(d.retryAfterSeconds) });
  if (d.extraHeaders) responseHeaders.push(...d.extraHeaders);
  // Field order as in allow() (decide.ts): one object shape for every Decision.
  return {
    allowed: false,
    status: row.status,
    reason: d.reason,
    route: d.route,
    identity: d.identity,
    credential: d.credential,
    responseHeaders,
    set: undefined,
    remove: undefined,
    removeQuery: undefined,
    error,
    description: d.description ?? row.description,
  };
}

/** The JSON body of a deny: `error` and a short description, nothing internal. */
export function denyBody(d: Deny): string {
  return JSON.stringify({ error: d.error, error_description: d.description });
}
