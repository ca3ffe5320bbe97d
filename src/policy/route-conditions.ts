// A route's `when` list compiled into the core's RouteConditions (src/core/conditions.ts): the CEL
// conditions, and the route's path template for `request.params`. Compiled once per config.
import type { ConditionInput, ConditionVerdict, RouteConditions } from '../core/conditions.ts';
import {
  buildActivation,
  compileConditions,
  evaluateAll,
  type CompiledCondition,
  type ConditionActivation,
  type ConditionResult,
} from './conditions/index.ts';
import type { PathTemplate } from './path-template.ts';

export type WhenEntry = string | { name?: string; expr: string };

const NO_PARAMS = Object.freeze(Object.create(null) as Record<string, string>);
const PASS: ConditionVerdict = Object.freeze({ ok: true });

/** One condition's outcome, for `portcullis check --explain`. */
export interface ExplainedCondition {
  where: string;
  name: string | undefined;
  source: string;
  result: ConditionResult;
  claimsRead: readonly string[];
}

export class CompiledRouteConditions implements RouteConditions {
  readonly conditions: readonly CompiledCondition[];

  /** Throws a PolicyConfigError naming `routes[i].when[j]` for a condition that does not compile. */
  constructor(
    entries: readonly WhenEntry[],
    where: string,
    private readonly template: PathTemplate | undefined,
    private readonly isPublic: boolean,
  ) {
    this.conditions = Object.freeze(compileConditions(entries, where));
  }

  evaluate(input: ConditionInput): ConditionVerdict {
    const r = evaluateAll(this.conditions, this.activation(input));
    if (r.ok) return PASS;
    const c = this.conditions[r.failed];
    const condition = c.name ?? c.where;
    return r.result.ok
      ? { ok: false, reason: 'condition_failed', condition }
      : { ok: false, reason: 'condition_error', condition, code: r.result.error.code };
  }

  /** Every condition with its result (not only up to the first that fails). */
  explain(input: ConditionInput): ExplainedCondition[] {
    const activation = this.activation(input);
    return this.conditions.map((c) => ({
      where: c.where,
      name: c.name,
      source: c.source,
      result: c.evaluate(activation),
      claimsRead: c.claimsRead,
    }));
  }

  // The last path the route table matched against the template, and its values: the Check that
  // chose this route by that match reads them back in params() instead of matching again. The values
  // are a function of the path alone (one template, one formatSuffix), so another Check overwriting
  // the slot in between only costs a second match; nothing reads them but CEL, which never writes.
  private lastPath: string | undefined;
  private lastParams: Readonly<Record<string, string>> | undefined;

  /** The template's match for RouteTable.match, remembered for params(). */
  matchTemplate(path: string, lowered: string | undefined): Readonly<Record<string, string>> | undefined {
    const params = this.template!.match(path, lowered, !this.isPublic);
    this.lastPath = path;
    this.lastParams = params;
    return params;
  }

  /** `request.params`: the template's values (none when Envoy named the route and the path does not fit). */
  params(path: string): Readonly<Record<string, string>> {
    if (path === this.lastPath && this.lastParams !== undefined) return this.lastParams;
    return this.template?.match(path, undefined, !this.isPublic) ?? NO_PARAMS;
  }

  private activation(input: ConditionInput): ConditionActivation {
    const q = input.rawPath.indexOf('?');
    return buildActivation(
      {
        method: input.method,
        host: input.host,
        path: input.path,
        query: q === -1 ? '' : input.rawPath.slice(q + 1),
        headers: input.headers,
        params: this.params(input.path),
        sourceIp: input.sourceIp,
        contextExtensions: input.contextExtensions,
      },
      input.identity,
      new Date(input.nowMs),
    );
  }
}
