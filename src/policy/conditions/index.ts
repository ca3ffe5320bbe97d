// Route conditions (`routes[].when`) in CEL: docs/policy.md.
export {
  buildActivation,
  parseQueryMap,
  QueryDecodeError,
  type ConditionActivation,
  type ConditionIdentityInput,
  type ConditionRequestInput,
} from './activation.ts';
export {
  compileCondition,
  compileConditions,
  evaluateAll,
  type CompiledCondition,
  type ConditionError,
  type ConditionResult,
} from './compile.ts';
export { CONDITION_LIMITS, IDENTITY_FIELDS, REQUEST_FIELDS } from './environment.ts';
export { ipInCidr, isTimeZone, parseCidr } from './helpers.ts';
