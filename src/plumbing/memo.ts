// The one bounded cache of the service. Every memo on the Check path is a Memo: header segments of
// JWTs, key objects' verify inputs, API-key identities and address lists, identity header lists,
// stripped header names, encoded allow bytes, decoded header names, metric children, phantom tokens.
//
// The invariant every Memo keeps: the value for a key is a function of the key alone, given state
// that is fixed for as long as the memo lives (a memo belongs to the object whose state it derives
// from, such as one config generation's HeaderPolicy, or derives from nothing else). Keys are strings,
// numbers, or frozen objects compared by identity: an object that can change is never a key. So a
// hit returns exactly what a miss would compute, and emptying a memo is always safe: it costs only
// the misses that refill it.
//
// The bound: at most `max` entries; an insert into a full memo empties it first. A hit does no
// bookkeeping (no recency list), and a flood of never-seen keys costs the flood its own misses,
// never memory beyond the bound. `max` is sized to the working set it serves (what one deployment
// repeats from Check to Check).
export class Memo<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly max: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Stores `value` (emptying a full memo first) and returns it. */
  set(key: K, value: V): V {
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(key, value);
    return value;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
