// Route conditions (`routes[].when`) as the core sees them: one call per Check of a route that has
// them, answering whether they all hold. The CEL behind it lives in src/policy/conditions/; the core
// knows only this interface, so decide() stays free of any expression language.
import { deny, type DenyDetails } from './decision.ts';
import type { Deny, Identity } from './types.ts';

/** What a route's conditions read, as decide() has it once the route is chosen. */
export interface ConditionInput {
  readonly method: string;
  /** Canonical host (normalizeHost). */
  readonly host: string;
  /** Normalized path (normalizePath), without the query. */
  readonly path: string;
  /** `:path` as received: the query is read from it only if a condition reads `request.query`. */
  readonly rawPath: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The client address (after source_ip_header). */
  readonly sourceIp: string;
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** Undefined on a public route: `has(identity.subject)` is then false. */
  readonly identity: Identity | undefined;
  /** Milliseconds since epoch (`now`). */
  readonly nowMs: number;
}

/**
 * All conditions held, or the first that did not: false (`condition_failed`) or an error
 * (`condition_error`, with its CEL code). `condition` names it (the entry's name, else its config
 * path `routes[i].when[j]`): for logs and metrics, never for the client.
 */
export type ConditionVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: 'condition_failed' | 'condition_error';
      readonly condition: string;
      readonly code?: string;
    };

export interface RouteConditions {
  /** Never throws: an evaluation that cannot finish is a `condition_error`. */
  evaluate(input: ConditionInput): ConditionVerdict;
}

/** The deny for a route whose conditions do not all hold, or undefined when they do. */
export function conditionsDeny(
  conditions: RouteConditions,
  input: ConditionInput,
  realm: string,
  details: DenyDetails,
): Deny | undefined {
  const v = conditions.evaluate(input);
  if (v.ok) return undefined;
  return deny(v.reason, realm, { ...details, condition: v.code ? `${v.condition} (${v.code})` : v.condition });
}
