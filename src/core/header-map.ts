// The request-header map every adapter hands to decide(): lower-case names to values, inheriting
// nothing (no `constructor`, `toString` or `__proto__` from Object.prototype), like
// Object.create(null). Unlike Object.create(null), which V8 keeps as a hash table from the start,
// objects of a constructor whose prototype is a null-prototype object start with a hidden class:
// the same header names in the same order (one Envoy, one client) give every Check's map the same
// shape, so decide()'s lookups and the for-in over the names in HeaderPolicy.removals stay on V8's
// fast paths. Node's querystring does the same.
export type HeaderMap = Record<string, string>;

function HeaderMapObject(): void {}
HeaderMapObject.prototype = Object.create(null) as object;

export function newHeaderMap(): HeaderMap {
  return new (HeaderMapObject as unknown as new () => HeaderMap)();
}
