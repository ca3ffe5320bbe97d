// What the CEL library accepts but a route condition may not do, found by walking the parsed
// expression when the config loads. Each rule keeps one evaluation cheap and bounded whatever the
// request carries; the reasons are in docs/policy.md, "Guard rails".
import type { ASTNode } from '@marcbachmann/cel-js';
import { IDENTITY_FIELDS, LOCAL_TIME_FUNCTIONS, REQUEST_FIELDS } from './environment.ts';
import { isTimeZone, parseCidr } from './helpers.ts';

/** A rule broken: what to tell the operator, and the part of the expression it is about. */
export interface LintFinding {
  message: string;
  node: ASTNode;
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

// The built-in time-zone getters build an Intl formatter per call; three have a cached twin.
const ZONE_GETTERS = new Set([
  'getDate',
  'getDayOfMonth',
  'getDayOfWeek',
  'getDayOfYear',
  'getFullYear',
  'getHours',
  'getMilliseconds',
  'getMinutes',
  'getMonth',
  'getSeconds',
]);
const LOCAL_TWIN: Record<string, string> = {
  getHours: 'localHours',
  getMinutes: 'localMinutes',
  getDayOfWeek: 'localDayOfWeek',
};

// Functions whose cost grows with the size of their receiver or arguments.
const LINEAR_FUNCTIONS = new Set([
  'contains',
  'indexOf',
  'lastIndexOf',
  'split',
  'join',
  'lowerAscii',
  'upperAscii',
  'trim',
  'substring',
  'inCidr',
  'string',
  'bytes',
]);

// Variables' fields that are maps: `x in request.headers` is a hash lookup, not a scan.
const MAP_FIELDS: Record<string, ReadonlySet<string>> = {
  request: new Set(['query', 'headers', 'params', 'context_extensions']),
  identity: new Set(['claims']),
};
const FIELDS: Record<string, Record<string, string>> = { request: REQUEST_FIELDS, identity: IDENTITY_FIELDS };

/** The first rule the expression breaks, or undefined. */
export function lintCondition(root: ASTNode): LintFinding | undefined {
  let found: LintFinding | undefined;
  const fail = (node: ASTNode, message: string) => {
    found ??= { node, message };
  };

  // `iter` holds the iteration variables of the comprehension whose body we are in (undefined
  // outside any body): there, anything else the expression names is read again for every element.
  const walk = (node: ASTNode, iter: ReadonlySet<string> | undefined): void => {
    if (found) return;
    switch (node.op) {
      case 'value':
      case 'id':
        return;
      case '.':
      case '.?': {
        const [target, field] = node.args;
        checkSelect(target, field, node, fail);
        walk(target, iter);
        return;
      }
      case 'call': {
        const [name, args] = node.args;
        callRules(name, undefined, args, node, iter, fail);
        for (const a of args) walk(a, iter);
        return;
      }
      case 'rcall': {
        const [name, receiver, args] = node.args;
        if (COMPREHENSIONS.has(name) && (args.length === 2 || args.length === 3) && args[0].op === 'id') {
          if (iter) {
            fail(
              node,
              `${name}() inside another comprehension's body: its cost is the product of the two lists' sizes. Use one comprehension per list`,
            );
            return;
          }
          walk(receiver, undefined);
          // One iteration variable; map(x, filter, transform) has two bodies.
          const vars = new Set([args[0].args]);
          for (const body of args.slice(1)) walk(body, vars);
          return;
        }
        callRules(name, receiver, args, node, iter, fail);
        walk(receiver, iter);
        for (const a of args) walk(a, iter);
        return;
      }
      case 'list':
        for (const a of node.args) walk(a, iter);
        return;
      case 'map':
        for (const [k, v] of node.args) {
          walk(k, iter);
          walk(v, iter);
        }
        return;
      case 'in': {
        const [left, right] = node.args;
        if (iter && right.op !== 'list' && !isMapField(right) && readsOuter(right, iter)) {
          fail(
            node,
            `\`in\` inside a comprehension's body scans a list that is not the element on every element (quadratic). Test it outside the comprehension, or against a list literal or a map`,
          );
        }
        walk(left, iter);
        walk(right, iter);
        return;
      }
      case '+': {
        const [left, right] = node.args;
        if (iter && (readsOuter(left, iter) || readsOuter(right, iter))) {
          fail(
            node,
            `\`+\` inside a comprehension's body builds a new value from outside the element on every element. Compute it once outside: cel.bind(name, value, list.exists(x, x == name))`,
          );
        }
        walk(left, iter);
        walk(right, iter);
        return;
      }
      default: {
        // Every other operator has one or two, or three (?:), operand nodes.
        const args = node.args as ASTNode | ASTNode[];
        if (Array.isArray(args)) for (const a of args) walk(a, iter);
        else walk(args, iter);
      }
    }
  };
  walk(root, undefined);
  return found;
}

function callRules(
  name: string,
  receiver: ASTNode | undefined,
  args: readonly ASTNode[],
  node: ASTNode,
  iter: ReadonlySet<string> | undefined,
  fail: (node: ASTNode, message: string) => void,
): void {
  if (name === 'matches') {
    fail(
      node,
      'matches() is not available: the regular expressions of JavaScript backtrack, and a crafted header can make one run for seconds. Use startsWith(), endsWith(), contains(), split() or `in` a list, or a path template',
    );
    return;
  }
  if (name === 'json') {
    fail(
      node,
      'json() is not available in route conditions: it would parse request-controlled text into structures of any depth',
    );
    return;
  }
  if (receiver && ZONE_GETTERS.has(name) && args.length === 1) {
    const twin = LOCAL_TWIN[name];
    fail(
      node,
      twin
        ? `${name}(zone) builds a time-zone formatter on every call; use ${twin}(zone), e.g. now.${twin}('Europe/Berlin'), which caches it`
        : `${name}(zone) builds a time-zone formatter on every call; use now.localHours/localMinutes/localDayOfWeek(zone), or ${name}() in UTC`,
    );
    return;
  }
  if (receiver && (LOCAL_TIME_FUNCTIONS as readonly string[]).includes(name)) {
    const zone = args[0];
    if (!zone || zone.op !== 'value' || typeof zone.args !== 'string') {
      fail(node, `${name}() takes the time zone as a string literal, e.g. now.${name}('Europe/Berlin')`);
    } else if (!isTimeZone(zone.args)) {
      fail(zone, `unknown time zone "${zone.args}": use an IANA name such as 'Europe/Berlin' or 'UTC'`);
    }
    return;
  }
  if (receiver && name === 'inCidr' && args.length === 1) {
    const ranges = args[0].op === 'list' ? args[0].args : [args[0]];
    for (const r of ranges) {
      if (r.op !== 'value' || typeof r.args !== 'string') continue; // read at run time: an error there denies
      const parsed = parseCidr(r.args);
      if (typeof parsed === 'string') {
        fail(r, `inCidr(): ${parsed}`);
        return;
      }
    }
  }
  if (iter && LINEAR_FUNCTIONS.has(name)) {
    const operands = receiver ? [receiver, ...args] : [...args];
    if (operands.some((o) => o.op !== 'list' && readsOuter(o, iter))) {
      fail(
        node,
        `${name}() inside a comprehension's body works through a value from outside the element on every element (quadratic). Do it once, outside the comprehension`,
      );
    }
  }
}

/**
 * `request.x` / `identity.x` name a declared field, and a field that is not a map has no members.
 * The type checker already refuses most of these; inside has() it does not.
 */
function checkSelect(
  target: ASTNode,
  field: string,
  node: ASTNode,
  fail: (node: ASTNode, message: string) => void,
): void {
  if (target.op === 'id') {
    const fields = FIELDS[target.args];
    if (fields && !(field in fields))
      fail(node, `${target.args} has no field "${field}"; it has ${Object.keys(fields).join(', ')}`);
    return;
  }
  if ((target.op === '.' || target.op === '.?') && target.args[0].op === 'id') {
    const [outer, name] = [target.args[0].args, target.args[1]];
    const type = FIELDS[outer]?.[name];
    if (type !== undefined && !type.startsWith('map<'))
      fail(node, `${outer}.${name} is a ${type}: it has no field "${field}"`);
  }
}

/** `request.headers`, `identity.claims`, ...: a variable's field that is a map. */
function isMapField(node: ASTNode): boolean {
  return node.op === '.' && node.args[0].op === 'id' && MAP_FIELDS[node.args[0].args]?.has(node.args[1]) === true;
}

/** Does the expression read any variable other than the comprehension's own (literals do not)? */
function readsOuter(node: ASTNode, iter: ReadonlySet<string>): boolean {
  switch (node.op) {
    case 'value':
      return false;
    case 'id':
      return !iter.has(node.args);
    case '.':
    case '.?':
      return readsOuter(node.args[0], iter);
    case 'call':
      return node.args[1].some((a) => readsOuter(a, iter));
    case 'rcall':
      return readsOuter(node.args[1], iter) || node.args[2].some((a) => readsOuter(a, iter));
    case 'list':
      return node.args.some((a) => readsOuter(a, iter));
    case 'map':
      return node.args.some(([k, v]) => readsOuter(k, iter) || readsOuter(v, iter));
    default: {
      const args = node.args as ASTNode | ASTNode[];
      return Array.isArray(args) ? args.some((a) => readsOuter(a, iter)) : readsOuter(args, iter);
    }
  }
}

/**
 * The claims an expression reads, as dotted paths (`roles`, `realm_access.roles`; a member that
 * is not a plain name is written `["name"]`): the longest chain of member names written after
 * `identity.claims`, for `portcullis check --explain`. A member computed at run time ends the chain.
 */
export function claimPathsRead(root: ASTNode): string[] {
  const out = new Set<string>();
  const visit = (node: ASTNode, parentExtendsChain: boolean): void => {
    const chain = claimChain(node);
    if (chain !== undefined && !parentExtendsChain && chain.length > 0)
      out.add(
        chain
          .map((n) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(n) ? `.${n}` : `[${JSON.stringify(n)}]`))
          .join('')
          .replace(/^\./, ''),
      );
    for (const child of children(node)) visit(child, chain !== undefined && claimChain(child) !== undefined);
  };
  visit(root, false);
  return [...out];
}

/** The member names after `identity.claims` if `node` is such a chain (`[]` for the map itself). */
function claimChain(node: ASTNode): string[] | undefined {
  if (node.op === '.' || node.op === '.?') {
    const [target, field] = node.args;
    if (target.op === 'id' && target.args === 'identity') return field === 'claims' ? [] : undefined;
    const inner = claimChain(target);
    return inner && [...inner, field];
  }
  if (node.op === '[]' || node.op === '[?]') {
    const [target, index] = node.args;
    const inner = claimChain(target);
    return inner && index.op === 'value' && typeof index.args === 'string' ? [...inner, index.args] : undefined;
  }
  return undefined;
}

function children(node: ASTNode): ASTNode[] {
  switch (node.op) {
    case 'value':
    case 'id':
      return [];
    case '.':
    case '.?':
      return [node.args[0]];
    case 'call':
      return node.args[1];
    case 'rcall':
      return [node.args[1], ...node.args[2]];
    case 'list':
      return node.args;
    case 'map':
      return node.args.flat();
    default: {
      const args = node.args as ASTNode | ASTNode[];
      return Array.isArray(args) ? args : [args];
    }
  }
}
