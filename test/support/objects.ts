// Object helpers for tests.

/** No object on `o`'s prototype chain has a property of its own: `o` inherits nothing. */
export function inheritsNothing(o: object): boolean {
  for (let p = Object.getPrototypeOf(o); p !== null; p = Object.getPrototypeOf(p))
    if (Reflect.ownKeys(p).length > 0) return false;
  return true;
}
