// The one CEL environment every route condition is compiled in: the variables a condition may read,
// their types (so the type checker refuses `identty.subject`, `request.methd` or `request.method + 1`
// when the config loads), the structural limits, and Portcullis's functions (helpers.ts).
// Built once per process: creating an Environment is far dearer than compiling a condition.
import { Environment } from '@marcbachmann/cel-js';
import { ipInCidr, localTime } from './helpers.ts';

/** The fields of `request`, as CEL types. */
export const REQUEST_FIELDS = {
  method: 'string',
  host: 'string',
  path: 'string',
  query: 'map<string, string>',
  headers: 'map<string, string>',
  params: 'map<string, string>',
  source_ip: 'string',
  context_extensions: 'map<string, string>',
} as const;

/** The fields of `identity`, as CEL types. `claims` holds JSON, so its members are `dyn`. */
export const IDENTITY_FIELDS = {
  method: 'string',
  subject: 'string',
  client_id: 'string',
  scopes: 'list<string>',
  issuer: 'string',
  key_id: 'string',
  claims: 'map<string, dyn>',
  /** How the credential was proven held: dpop, mtls or dpop+mtls (docs/proof-of-possession.md). */
  bound: 'string',
} as const;

/**
 * `request` as conditions see it. An instance of a class registered with the environment, so the
 * library reads its fields as they are instead of converting a plain object once per condition, and
 * `query` is parsed only when a condition reads it (activation.ts).
 */
export class ConditionRequest {
  constructor(
    readonly method: string,
    readonly host: string,
    readonly path: string,
    private readonly queryOf: () => Readonly<Record<string, string>>,
    readonly headers: Readonly<Record<string, string>>,
    readonly params: Readonly<Record<string, string>>,
    readonly source_ip: string,
    readonly context_extensions: Readonly<Record<string, string>>,
  ) {}

  private parsedQuery: Readonly<Record<string, string>> | undefined;

  get query(): Readonly<Record<string, string>> {
    return (this.parsedQuery ??= this.queryOf());
  }
}

/**
 * `identity` as conditions see it. An absent field is `undefined`, which CEL's `has()` reports as
 * false and a plain read reports as an error (`no_such_key`); on a public route every field is absent.
 */
export class ConditionIdentity {
  constructor(
    readonly method: string | undefined,
    readonly subject: string | undefined,
    readonly client_id: string | undefined,
    readonly scopes: readonly string[] | undefined,
    readonly issuer: string | undefined,
    readonly key_id: string | undefined,
    readonly claims: Readonly<Record<string, unknown>> | undefined,
    readonly bound: string | undefined = undefined,
  ) {}
}

/** Structural limits: far above any real condition, far below what slows the parser or checker. */
export const CONDITION_LIMITS = {
  /** Characters of source, checked before parsing. */
  maxLength: 4096,
  maxAstNodes: 1000,
  maxDepth: 32,
  maxListElements: 256,
  maxMapEntries: 64,
  maxCallArguments: 8,
} as const;

/** The functions Portcullis adds, by name (lint.ts checks their literal arguments). */
export const LOCAL_TIME_FUNCTIONS = ['localHours', 'localMinutes', 'localDayOfWeek'] as const;

let shared: Environment | undefined;

export function conditionEnvironment(): Environment {
  return (shared ??= createEnvironment());
}

function createEnvironment(): Environment {
  const TS = 'google.protobuf.Timestamp';
  const { maxLength: _, ...limits } = CONDITION_LIMITS;
  return new Environment({ limits, unlistedVariablesAreDyn: false, enableOptionalTypes: false })
    .registerType('portcullis.Request', { ctor: ConditionRequest, fields: REQUEST_FIELDS })
    .registerType('portcullis.Identity', { ctor: ConditionIdentity, fields: IDENTITY_FIELDS })
    .registerVariable('request', 'portcullis.Request', { description: 'the request being authorized' })
    .registerVariable('identity', 'portcullis.Identity', {
      description: 'the verified caller; every field absent on a public route',
    })
    .registerVariable('now', TS, { description: 'the time of the Check' })
    .registerFunction('string.inCidr(string): bool', (ip: string, range: string) => ipInCidr(ip, range))
    .registerFunction('string.inCidr(list<string>): bool', (ip: string, ranges: string[]) => ipInCidr(ip, ranges))
    .registerFunction(`${TS}.localHours(string): int`, (at: Date, zone: string) => localTime(at, zone).hours)
    .registerFunction(`${TS}.localMinutes(string): int`, (at: Date, zone: string) => localTime(at, zone).minutes)
    .registerFunction(`${TS}.localDayOfWeek(string): int`, (at: Date, zone: string) => localTime(at, zone).dayOfWeek);
}
