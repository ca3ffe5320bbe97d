// Route conditions: compiled once when the config loads (parse, type-check, guard rails), evaluated
// on every Check of their route. Evaluation never throws and never allows on an error.
import {
  EvaluationError,
  ParseError,
  TypeError as CelTypeError,
  type ASTNode,
  type ParseResult,
} from '@marcbachmann/cel-js';
import { PolicyConfigError } from '../config-error.ts';
import { QueryDecodeError, type ConditionActivation } from './activation.ts';
import { CONDITION_LIMITS, conditionEnvironment } from './environment.ts';
import { HelperError } from './helpers.ts';
import { claimPathsRead, lintCondition } from './lint.ts';

/**
 * Why a condition could not be evaluated: `code` is the CEL error code (`no_such_key` for an absent
 * claim, `no_such_overload` for a value of the wrong type, `invalid_ip`, ...), `at` the part of the
 * expression that failed. Both come from the config and the library, never from the request or the
 * credential, so both may be logged.
 */
export interface ConditionError {
  code: string;
  at: string;
}

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: ConditionError };

export interface CompiledCondition {
  /** Config path, e.g. `routes[2].when[0]`. */
  readonly where: string;
  /** The entry's `name`, if it has one: what logs and metrics call the condition. */
  readonly name: string | undefined;
  readonly source: string;
  /** The claims the expression reads (`roles`, `realm_access.roles`), for `check --explain`. */
  readonly claimsRead: readonly string[];
  /** Never throws. Only `{ ok: true, value: true }` lets the request through. */
  evaluate(activation: ConditionActivation): ConditionResult;
}

/**
 * Compiles one condition, or throws a PolicyConfigError naming `where` with the CEL message:
 * a syntax error, an unknown variable or field, a wrong type, a result that is not a bool, an
 * expression over the size bounds, or one that breaks a guard rail (lint.ts).
 */
export function compileCondition(expr: string, where: string, name?: string): CompiledCondition {
  if (typeof expr !== 'string' || expr.trim() === '')
    throw new PolicyConfigError(where, 'a condition is a non-empty CEL expression');
  if (expr.length > CONDITION_LIMITS.maxLength) {
    throw new PolicyConfigError(
      where,
      `the condition is ${expr.length} characters long; at most ${CONDITION_LIMITS.maxLength}`,
    );
  }
  let program: ParseResult;
  try {
    program = conditionEnvironment().parse(expr);
  } catch (e) {
    throw new PolicyConfigError(where, describeCompileError(e, expr));
  }
  let checked: ReturnType<ParseResult['check']>;
  try {
    checked = program.check();
  } catch (e) {
    throw new PolicyConfigError(where, describeCompileError(e, expr));
  }
  if (!checked.valid) throw new PolicyConfigError(where, describeCompileError(checked.error, expr));
  if (checked.type !== 'bool') {
    const hint = checked.type === 'dyn' ? ': a claim is untyped, compare it (identity.claims.admin == true)' : '';
    throw new PolicyConfigError(where, `a condition must be a bool; this one is a ${checked.type}${hint}`);
  }
  const finding = lintCondition(program.ast);
  if (finding) throw new PolicyConfigError(where, `${finding.message} (at ${snippet(expr, rangeOf(finding.node))})`);

  return {
    where,
    name,
    source: expr,
    claimsRead: Object.freeze(claimPathsRead(program.ast)),
    evaluate(activation: ConditionActivation): ConditionResult {
      let value: unknown;
      try {
        value = program(activation);
      } catch (e) {
        return { ok: false, error: evaluationFailure(e, expr) };
      }
      if (value === true) return TRUE;
      if (value === false) return FALSE;
      return { ok: false, error: { code: 'not_a_bool', at: snippet(expr, undefined) } };
    },
  };
}

const TRUE: ConditionResult = Object.freeze({ ok: true, value: true });
const FALSE: ConditionResult = Object.freeze({ ok: true, value: false });

/**
 * Compiles a route's `when` list: plain expressions or `{ name, expr }` entries, each with its
 * path (`${where}[j]`). The first mistake is thrown.
 */
export function compileConditions(
  entries: ReadonlyArray<string | { name?: string; expr: string }>,
  where: string,
): CompiledCondition[] {
  return entries.map((e, j) =>
    typeof e === 'string' ? compileCondition(e, `${where}[${j}]`) : compileCondition(e.expr, `${where}[${j}]`, e.name),
  );
}

/**
 * Evaluates every condition of a route against one activation, in order, and stops at the first
 * that does not hold: `failed` is its index, `result` what it gave (false, or an error).
 */
export function evaluateAll(
  conditions: readonly CompiledCondition[],
  activation: ConditionActivation,
): { ok: true } | { ok: false; failed: number; result: ConditionResult } {
  for (let i = 0; i < conditions.length; i++) {
    const r = conditions[i].evaluate(activation);
    if (!r.ok || !r.value) return { ok: false, failed: i, result: r };
  }
  return ALL_HOLD;
}
const ALL_HOLD = Object.freeze({ ok: true as const });

const CODE = /^[a-z][a-z_]{0,39}$/;

function evaluationFailure(e: unknown, expr: string): ConditionError {
  if (e instanceof EvaluationError || e instanceof CelTypeError) {
    // A function of ours (helpers.ts) that refused a value: the library wraps it with its node.
    const cause = (e as Error & { cause?: unknown }).cause;
    const code = cause instanceof HelperError ? cause.code : e.code;
    return { code: CODE.test(code) ? code : 'evaluation_error', at: snippet(expr, e.range) };
  }
  if (e instanceof HelperError) return { code: e.code, at: snippet(expr, undefined) };
  // Anything else (a RangeError from deep recursion, a query that does not decode) is not an
  // expected outcome of a condition; the request is still denied.
  return { code: e instanceof QueryDecodeError ? 'query_undecodable' : 'internal_error', at: snippet(expr, undefined) };
}

function describeCompileError(e: unknown, expr: string): string {
  if (e instanceof ParseError || e instanceof CelTypeError) {
    const where = e.range ? ` (at ${snippet(expr, e.range)})` : '';
    if (e.code === 'limit_exceeded') return `${e.summary}: the condition is too large or too deeply nested${where}`;
    return `${e.summary}${where}`;
  }
  if (e instanceof RangeError) return 'the condition is too deeply nested to check';
  return `cannot compile the condition: ${(e as Error)?.message ?? String(e)}`;
}

function rangeOf(node: ASTNode): { start: number; end: number } | undefined {
  return node.range;
}

/** The part of the expression a range covers, quoted and bounded; the whole expression without one. */
function snippet(expr: string, range: { start: number; end: number } | undefined): string {
  let text = range ? expr.slice(range.start, Math.max(range.end, range.start)) : expr;
  if (range && text === '') return range.start >= expr.length ? 'the end' : `column ${range.start + 1}`;
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return `\`${text}\``;
}
