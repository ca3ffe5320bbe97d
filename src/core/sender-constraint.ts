// The sender-constraint step of the decision (docs/proof-of-possession.md): after a credential is
// verified, the proof of possession its token is bound to (`cnf`: a DPoP key, RFC 9449; a client
// certificate, RFC 8705) and the one the route demands (`routes[].sender_constraint`). The checks
// themselves are a dependency (ProofOfPossession, src/credentials/pop/); this module says when to
// run them and shapes the DPoP challenge of RFC 9449, §7.1.
import { withChallenge } from './decision.ts';
import { withBinding } from './identity.ts';
import type { CompiledPolicy, RouteRule, SenderConstraint } from './policy.ts';
import type { DenyReason } from './reasons.ts';
import type { AuthzRequest, Binding, CredentialKind, Decision, HeaderSet, Identity } from './types.ts';

export interface PopCheckInput {
  /** How the token came: `Authorization: DPoP`, or any bearer form. */
  scheme: 'bearer' | 'dpop';
  /** The token exactly as sent (the proof's `ath` is its hash). */
  token: string;
  /** The token's `cnf` (JWT claim or introspection member); undefined when it has none. */
  cnf: unknown;
  required: SenderConstraint;
}

export type PopCheckResult =
  | { ok: true; bound: Binding | undefined; responseHeaders?: readonly HeaderSet[] }
  | { ok: false; reason: DenyReason; responseHeaders?: readonly HeaderSet[] };

/** The proof-of-possession checks (src/credentials/pop/checker.ts). */
export interface ProofOfPossession {
  /**
   * Checks what the token is bound to against the request. Throws DependencyUnavailableError when
   * it cannot tell (the shared replay cache is down and on_redis_error says deny).
   */
  check(req: AuthzRequest, input: PopCheckInput): Promise<PopCheckResult>;
  /** The `algs` of DPoP challenges; undefined when credentials.dpop is not configured. */
  readonly dpopAlgorithms: readonly string[] | undefined;
}

/** Kinds whose credential is a token that may carry `cnf`. */
const TOKEN_KINDS: ReadonlySet<CredentialKind> = new Set(['jwt', 'oauth2']);

export type SenderConstraintOutcome =
  | { ok: true; identity: Identity; responseHeaders?: readonly HeaderSet[] }
  | { ok: false; reason: DenyReason; responseHeaders?: readonly HeaderSet[] };

/**
 * undefined when there is nothing to check (an unbound token sent as Bearer to a route that demands
 * nothing: the common case stays synchronous); otherwise the outcome. May reject with the
 * checker's DependencyUnavailableError.
 */
export function checkSenderConstraint(
  req: AuthzRequest,
  route: RouteRule,
  cred: { kind: CredentialKind; value: string; dpop?: true },
  identity: Identity,
  pop: ProofOfPossession | undefined,
): Promise<SenderConstraintOutcome> | undefined {
  const required = route.senderConstraint ?? 'none';
  if (cred.kind === 'mtls') {
    // The client certificate is the credential: bound to it by construction, never to a DPoP key.
    if (required === 'dpop') return Promise.resolve({ ok: false, reason: 'dpop_required' });
    return undefined;
  }
  const cnf = TOKEN_KINDS.has(cred.kind) ? identity.claims?.cnf : undefined;
  if (cnf === undefined && !cred.dpop && required === 'none') return undefined;
  if (!pop)
    return Promise.resolve({ ok: false, reason: cnf === undefined ? 'sender_constraint_required' : 'cnf_unsupported' });
  return pop
    .check(req, { scheme: cred.dpop ? 'dpop' : 'bearer', token: cred.value, cnf, required })
    .then((r): SenderConstraintOutcome => {
      if (!r.ok) return r;
      return {
        ok: true,
        identity: r.bound === undefined ? identity : withBinding(identity, r.bound),
        responseHeaders: r.responseHeaders,
      };
    });
}

/** Reasons whose `error` belongs on the DPoP challenge whatever scheme the request used. */
const DPOP_CHALLENGE_REASONS: ReadonlySet<DenyReason> = new Set<DenyReason>([
  'dpop_key_mismatch',
  'dpop_token_not_bound',
  'dpop_required',
  'dpop_bound_token_as_bearer',
]);

/**
 * RFC 9449, §7.1: with credentials.dpop configured, a 401 (or a 400 to a DPoP request) on a route
 * that takes tokens carries a DPoP challenge next to the Bearer one, in one `WWW-Authenticate`
 * value (Envoy keeps one value per header name in a denied response). The `error` goes on the
 * challenge of the scheme the client used; a route whose sender_constraint is dpop offers DPoP only.
 */
export function addDpopChallenge(
  d: Decision,
  req: AuthzRequest,
  policy: CompiledPolicy,
  algorithms: readonly string[],
): Decision {
  if (d.allowed || d.route === undefined) return d;
  const route = policy.routes.byName(d.route);
  if (!route || !(route.auth.has('jwt') || route.auth.has('oauth2'))) return d;
  const authz = req.headers['authorization'];
  const usedDpop = authz !== undefined && /^\s*dpop(\s|$)/i.test(authz);
  if (d.status !== 401 && !(d.status === 400 && usedDpop)) return d;
  const required = route.senderConstraint ?? 'none';
  if (required === 'mtls') return d;

  const reason = d.reason;
  const dpopReason =
    d.error === 'invalid_dpop_proof' || d.error === 'use_dpop_nonce' || DPOP_CHALLENGE_REASONS.has(reason);
  const errorOnDpop = dpopReason || (usedDpop && d.error !== 'missing_credentials');
  const realm = `realm="${policy.realm}"`;
  const params = [realm];
  // dpop_required and dpop_bound_token_as_bearer: the client sent no DPoP at all (RFC 6750, §3.1).
  if (errorOnDpop && reason !== 'dpop_required') {
    params.push(`error="${reason === 'dpop_bound_token_as_bearer' ? 'invalid_token' : d.error}"`);
    params.push(`error_description="${d.description}"`);
  }
  params.push(`algs="${algorithms.join(' ')}"`);
  const dpop = `DPoP ${params.join(', ')}`;
  if (required === 'dpop') return withChallenge(d, dpop);
  const existing = d.responseHeaders.find((h) => h.name === 'www-authenticate')?.value;
  const bearer = errorOnDpop || existing === undefined ? `Bearer ${realm}` : existing;
  return withChallenge(d, errorOnDpop ? `${dpop}, ${bearer}` : `${bearer}, ${dpop}`);
}
