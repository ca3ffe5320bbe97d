// The one place Decisions are made: allow() and deny(). A deny is built from a catalog reason
// (reasons.ts), which fixes its error, status and challenge; nothing else picks a status.
import { DENY_ERRORS, DENY_REASONS, type AllowReason, type Challenge, type DenyReason } from './reasons.ts';
import type { Allow, CredentialKind, Deny, HeaderSet, Identity, ShadowOutcome } from './types.ts';

export interface DenyDetails {
  route?: string;
  /** Who was refused, when a credential was verified first. */
  identity?: Identity;
  credential?: CredentialKind;
  /** insufficient_scope: the scopes the route requires. */
  scope?: readonly string[];
  retryAfterSeconds?: number;
  extraHeaders?: readonly HeaderSet[];
  /** condition_failed / condition_error: which condition, for logs and metrics. */
  condition?: string;
}

const NO_DETAILS: DenyDetails = Object.freeze({});

function challenge(kind: Challenge, realm: string, scope: readonly string[] | undefined): string | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'dpop':
      // The DPoP challenge needs the configured algorithms: addDpopChallenge (sender-constraint.ts).
      return undefined;
    case 'realm':
      return `Bearer realm="${realm}"`;
    case 'insufficient_scope':
      return `Bearer realm="${realm}", error="insufficient_scope", scope="${(scope ?? []).join(' ')}"`;
    default:
      return `Bearer realm="${realm}", error="${kind}"`;
  }
}

export function deny(reason: DenyReason, realm: string, d: DenyDetails = NO_DETAILS): Deny {
  const error = DENY_REASONS[reason].error;
  const row = DENY_ERRORS[error];
  const responseHeaders: HeaderSet[] = [];
  const wwwAuthenticate = challenge(row.challenge, realm, d.scope);
  if (wwwAuthenticate) responseHeaders.push({ name: 'www-authenticate', value: wwwAuthenticate });
  if (d.retryAfterSeconds !== undefined)
    responseHeaders.push({ name: 'retry-after', value: String(d.retryAfterSeconds) });
  if (d.extraHeaders) responseHeaders.push(...d.extraHeaders);
  return {
    allowed: false,
    status: row.status,
    reason,
    error,
    description: row.description,
    responseHeaders,
    route: d.route,
    identity: d.identity,
    credential: d.credential,
    condition: d.condition,
  };
}

export function allow(
  reason: AllowReason,
  route: string,
  identity: Identity | undefined,
  set: readonly HeaderSet[],
  remove: readonly string[],
  removeQuery: readonly string[],
  responseHeaders: readonly HeaderSet[],
  shadow?: ShadowOutcome,
): Allow {
  return { allowed: true, status: 200, reason, route, identity, set, remove, removeQuery, responseHeaders, shadow };
}

/** The JSON body of a deny: `error` and a short description, nothing internal. */
export function denyBody(d: Deny): string {
  return JSON.stringify({ error: d.error, error_description: d.description });
}

/**
 * The same deny with its `WWW-Authenticate` replaced (the DPoP challenge, which needs the configured
 * algorithms: sender-constraint.ts).
 */
export function withChallenge(d: Deny, wwwAuthenticate: string): Deny {
  const responseHeaders = d.responseHeaders.filter((h) => h.name !== 'www-authenticate');
  responseHeaders.unshift({ name: 'www-authenticate', value: wwwAuthenticate });
  return { ...d, responseHeaders };
}
